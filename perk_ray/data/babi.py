"""A small bAbI world: people move between rooms, pick up, drop and give objects; qa1-qa5 stories from it.

Each story is a list of fact sentences, the indices of its supporting facts, a question and its answer. The entity
sets are bAbI's, so the answer labels match BabiLong's scoring labels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

PEOPLE = ("Mary", "John", "Daniel", "Sandra")
QA5_PEOPLE = ("Fred", "Bill", "Jeff", "Mary")
LOCATIONS = ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office")
OBJECTS = ("apple", "football", "milk")
DIRECTIONS = {"north": (0, 1), "south": (0, -1), "east": (1, 0), "west": (-1, 0)}

MOVE_VERBS = ("went to", "journeyed to", "travelled to", "moved to", "went back to")
GET_VERBS = ("got", "grabbed", "picked up", "took")
DROP_VERBS = ("dropped", "discarded", "put down", "left")
GIVE_VERBS = ("gave", "handed", "passed")

TASK_FACTS = {"qa1": (2, 10), "qa2": (2, 20), "qa3": (4, 24), "qa4": (2, 2), "qa5": (4, 20)}
_ACTION_WEIGHTS = {
    "qa1": {"move": 1.0},
    "qa2": {"move": 0.5, "get": 0.3, "drop": 0.2},
    "qa3": {"move": 0.5, "get": 0.3, "drop": 0.2},
    "qa5": {"move": 0.35, "get": 0.25, "drop": 0.1, "give": 0.3},
}


@dataclass
class Story:
    facts: list[str]
    support: list[int]  # indices into facts, in story order
    question: str
    answer: str


@dataclass
class _Arrival:
    """An object reaching a location: by its first pick-up (``move`` None) or carried by ``carrier``'s move."""

    location: str
    move: int | None = None
    previous_move: int | None = None
    get: int | None = None


@dataclass
class _World:
    rng: random.Random
    people: tuple[str, ...]
    facts: list[str] = field(default_factory=list)
    location: dict[str, str] = field(default_factory=dict)  # person -> room
    holder: dict[str, str] = field(default_factory=dict)  # object -> person carrying it
    lying: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # object -> (room, drop fact, move fact)
    last_move: dict[str, int] = field(default_factory=dict)
    last_get: dict[tuple[str, str], int] = field(default_factory=dict)
    trail: dict[str, list[_Arrival]] = field(default_factory=lambda: {o: [] for o in OBJECTS})
    gives: list[tuple[int, str, str, str]] = field(default_factory=list)  # (fact, giver, object, receiver)

    def actions(self, kind: str) -> list[tuple]:
        if kind == "move":
            return [(p, room) for p in self.people for room in LOCATIONS if room != self.location.get(p)]
        if kind == "get":
            return [(p, o) for p in self.location for o in OBJECTS
                    if o not in self.holder and (o not in self.lying or self.lying[o][0] == self.location[p])]
        if kind == "drop":
            return [(p, o) for o, p in self.holder.items()]
        return [(p, o, q) for o, p in self.holder.items() for q in self.location
                if q != p and self.location[q] == self.location[p]]

    def step(self, weights: dict[str, float]) -> None:
        options = {kind: self.actions(kind) for kind in weights}
        kinds = [k for k in weights if options[k]]
        kind = self.rng.choices(kinds, [weights[k] for k in kinds])[0]
        getattr(self, kind)(*self.rng.choice(options[kind]))

    def _say(self, text: str) -> int:
        self.facts.append(text)
        return len(self.facts) - 1

    def _there(self) -> str:
        return " there" if self.rng.random() < 0.4 else ""

    def move(self, person: str, room: str) -> None:
        index = self._say(f"{person} {self.rng.choice(MOVE_VERBS)} the {room}.")
        previous = self.last_move.get(person)
        self.location[person], self.last_move[person] = room, index
        for obj, carrier in self.holder.items():
            if carrier == person:
                self.trail[obj].append(_Arrival(room, index, previous, self.last_get[(person, obj)]))

    def get(self, person: str, obj: str) -> None:
        index = self._say(f"{person} {self.rng.choice(GET_VERBS)} the {obj}{self._there()}.")
        self.holder[obj], self.last_get[(person, obj)] = person, index
        self.lying.pop(obj, None)
        if not self.trail[obj]:
            self.trail[obj].append(_Arrival(self.location[person]))

    def drop(self, person: str, obj: str) -> None:
        index = self._say(f"{person} {self.rng.choice(DROP_VERBS)} the {obj}{self._there()}.")
        del self.holder[obj]
        self.lying[obj] = (self.location[person], index, self.last_move[person])

    def give(self, giver: str, obj: str, receiver: str) -> None:
        index = self._say(f"{giver} {self.rng.choice(GIVE_VERBS)} the {obj} to {receiver}.")
        self.holder[obj] = receiver
        self.last_get[(receiver, obj)] = index
        self.gives.append((index, giver, obj, receiver))


def make_story(task: str, rng: random.Random, num_facts: int) -> Story | None:
    """A story of ``num_facts`` facts and one question about it; None when this draw has no valid question."""
    if task == "qa4":
        return _relations_story(rng, num_facts)
    world = _World(rng, QA5_PEOPLE if task == "qa5" else PEOPLE)
    while len(world.facts) < num_facts:
        world.step(_ACTION_WEIGHTS[task])
    ask = {"qa1": _ask_person, "qa2": _ask_object, "qa3": _ask_before, "qa5": _ask_giving}[task]
    candidates = ask(world)
    if not candidates:
        return None
    support, question, answer = rng.choice(candidates)
    return Story(world.facts, sorted(support), question, answer)


def _ask_person(world: _World) -> list[tuple[set[int], str, str]]:
    return [({world.last_move[p]}, f"Where is {p}?", room) for p, room in world.location.items()]


def _ask_object(world: _World) -> list[tuple[set[int], str, str]]:
    candidates = []
    for obj, person in world.holder.items():
        support = {world.last_get[(person, obj)], world.last_move[person]}
        candidates.append((support, f"Where is the {obj}?", world.location[person]))
    for obj, (room, dropped, moved) in world.lying.items():
        candidates.append(({moved, dropped}, f"Where is the {obj}?", room))
    return candidates


def _ask_before(world: _World) -> list[tuple[set[int], str, str]]:
    candidates = []
    for obj, trail in world.trail.items():
        rooms = [arrival.location for arrival in trail]
        for k in range(1, len(trail)):
            arrival = trail[k]
            if rooms.count(arrival.location) == 1:
                support = {arrival.previous_move, arrival.get, arrival.move}
                candidates.append((support, f"Where was the {obj} before the {arrival.location}?", rooms[k - 1]))
    return candidates


def _ask_giving(world: _World) -> list[tuple[set[int], str, str]]:
    """bAbI qa5 question forms, each kept only when exactly one giving in the story matches it."""
    forms = (
        (lambda g, o, r: (o, r), lambda g, o, r: (f"Who gave the {o} to {r}?", g)),
        (lambda g, o, r: (g, o), lambda g, o, r: (f"Who did {g} give the {o} to?", r)),
        (lambda g, o, r: (g, r), lambda g, o, r: (f"What did {g} give to {r}?", o)),
        (lambda g, o, r: (o, "received"), lambda g, o, r: (f"Who received the {o}?", r)),
        (lambda g, o, r: (o, "gave"), lambda g, o, r: (f"Who gave the {o}?", g)),
    )
    candidates = []
    for key, phrase in forms:
        keys = [key(g, o, r) for _, g, o, r in world.gives]
        for (index, g, o, r), k in zip(world.gives, keys):
            if keys.count(k) == 1:
                candidates.append(({index}, *phrase(g, o, r)))
    return candidates


def _relations_story(rng: random.Random, num_facts: int) -> Story:
    """Rooms on a grid; each fact places a new room one step from a placed one (qa4, two-argument relations)."""
    rooms = rng.sample(LOCATIONS, min(num_facts + 1, len(LOCATIONS)))
    cells = {rooms[0]: (0, 0)}
    relations: list[tuple[str, str, str]] = []  # (room, direction, reference room)
    for room in rooms[1:]:
        options = [(ref, d) for ref in cells for d, (dx, dy) in DIRECTIONS.items()
                   if (cells[ref][0] + dx, cells[ref][1] + dy) not in cells.values()]
        ref, direction = rng.choice(options)
        dx, dy = DIRECTIONS[direction]
        cells[room] = (cells[ref][0] + dx, cells[ref][1] + dy)
        relations.append((room, direction, ref))
    rng.shuffle(relations)
    facts = [f"The {room} is {d} of the {ref}." for room, d, ref in relations]
    index = rng.randrange(len(relations))
    room, direction, ref = relations[index]
    if rng.random() < 0.5:
        return Story(facts, [index], f"What is the {room} {direction} of?", ref)
    return Story(facts, [index], f"What is {direction} of the {ref}?", room)
