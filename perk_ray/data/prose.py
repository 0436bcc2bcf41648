"""A procedural prose generator for haystack text: varied sentence grammar over a novel-like vocabulary.

Deterministic given the ``random.Random`` it draws from; no corpus file, no network.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from perk_ray.data import prose_vocab as V


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _person(rng: random.Random) -> str:
    """A subject noun phrase for a person, lower-case where it is not a name."""
    kind = rng.random()
    if kind < 0.25:
        return rng.choice(V.FIRST_NAMES)
    if kind < 0.45:
        return f"{rng.choice(V.TITLES)} {rng.choice(V.SURNAMES)}"
    if kind < 0.55:
        return f"{rng.choice(V.FIRST_NAMES)} {rng.choice(V.SURNAMES)}"
    if kind < 0.8:
        adjective = f"{rng.choice(V.PERSON_ADJECTIVES)} " if rng.random() < 0.5 else ""
        return f"the {adjective}{rng.choice(V.ROLES)}"
    if kind < 0.92:
        return f"{rng.choice(('his', 'her', 'their', 'my'))} {rng.choice(V.RELATIVES)}"
    return rng.choice(V.PEOPLE_GROUPS)


def _subject(rng: random.Random) -> str:
    return rng.choice(("he", "she", "they")) if rng.random() < 0.15 else _person(rng)


def _thing(rng: random.Random, nouns: tuple[str, ...] = V.THINGS) -> str:
    noun = rng.choice(nouns)
    kind = rng.random()
    if kind < 0.4:
        return f"the {rng.choice(V.THING_ADJECTIVES)} {noun}"
    if kind < 0.7:
        return f"the {noun}"
    if kind < 0.85:
        return _a(f"{rng.choice(V.THING_ADJECTIVES)} {noun}")
    return f"{rng.choice(('his', 'her', 'their'))} {noun}"


def _handling(rng: random.Random) -> str:
    """A verb and a thing it fits: ``lit the old lantern``."""
    if rng.random() < 0.35:
        verb = rng.choice(tuple(V.VERB_THINGS))
        return f"{verb} {_thing(rng, V.VERB_THINGS[verb])}"
    return f"{rng.choice(V.TRANSITIVE_VERBS)} {_thing(rng)}"


def _place(rng: random.Random, places: tuple[str, ...] = V.PLACES) -> str:
    adjective = f"{rng.choice(V.PLACE_ADJECTIVES)} " if rng.random() < 0.35 else ""
    return f"the {adjective}{rng.choice(places)}"


def _movement(rng: random.Random) -> str:
    """A movement and a place it fits: ``rowed across the quiet lake``."""
    verb = rng.choice(tuple(V.MOTION_VERBS))
    return f"{verb} {_place(rng, V.MOTION_VERBS[verb])}"


def _tail(rng: random.Random, where: bool = True) -> str:
    """An optional adverbial, time phrase or (with ``where``) place closing a clause."""
    kind = rng.random()
    if kind < 0.35:
        return " " + rng.choice(V.ADVERBIALS)
    if kind < 0.6:
        return " " + rng.choice(V.TIME_PHRASES)
    if kind < 0.75 and where:
        return f" in {_place(rng, V.BUILDINGS)}"
    return ""


def _predicate(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        return f"{_handling(rng)}{_tail(rng)}"
    if kind < 0.6:
        return f"{rng.choice(V.INTRANSITIVE_VERBS)}{_tail(rng)}"
    if kind < 0.85:
        return f"{_movement(rng)}{_tail(rng, where=False)}"
    return f"{rng.choice(V.PERSON_VERBS)} {rng.choice(V.PERSON_OBJECTS)}{_tail(rng)}"


def _simple(rng: random.Random) -> str:
    return _cap(f"{_subject(rng)} {_predicate(rng)}.")


def _clause_first(rng: random.Random) -> str:
    return f"{rng.choice(V.CLAUSES)}, {_subject(rng)} {_predicate(rng)}."


def _compound(rng: random.Random) -> str:
    joiner = rng.choice((", and", ", but", "; meanwhile", ", while"))
    return _cap(f"{_subject(rng)} {_predicate(rng)}{joiner} {_person(rng)} {_predicate(rng)}.")


def _relative(rng: random.Random) -> str:
    background = rng.choice((
        f"had lived for years near {_place(rng)}", f"had never cared for {rng.choice(V.ABSTRACTS)}",
        f"had {_handling(rng)} {rng.choice(V.TIME_PHRASES)}",
        f"was known to everyone in {_place(rng)}", "had said nothing all evening",
    ))
    return _cap(f"{_person(rng)}, who {background}, {_predicate(rng)}.")


def _description(rng: random.Random) -> str:
    adjective_1, adjective_2 = rng.sample(V.PLACE_ADJECTIVES, 2)
    ending = rng.choice((
        f", and the air smelled of {rng.choice(V.SMELLS)}", f" {rng.choice(V.TIME_PHRASES)}",
        ", as it had always been", "", ", though nobody could say why",
    ))
    return f"The {rng.choice(V.PLACES)} was {adjective_1} and {adjective_2}{ending}."


def _weather(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return f"{rng.choice(V.WEATHER)}."
    when = f" {rng.choice(V.TIME_PHRASES)}" if rng.random() < 0.4 else ""
    return (f"{rng.choice(V.WEATHER_SUBJECTS)} {rng.choice(V.WEATHER_VERBS)} {rng.choice(V.WEATHER_PREPOSITIONS)} "
            f"the {rng.choice(V.LANDSCAPES)}{when}.")


def _dialogue(rng: random.Random) -> str:
    utterance = rng.choice(V.UTTERANCES)
    said = rng.choice(V.SAID_VERBS)
    mark = "?" if utterance.startswith(("Have", "Whatever")) else ","
    if rng.random() < 0.6:
        return f'"{utterance}{mark}" {said} {_person(rng)}.'
    end = "?" if mark == "?" else "."
    return _cap(f'{_person(rng)} {said}, "{utterance}{end}"')


def _reflection(rng: random.Random) -> str:
    subject = _subject(rng)
    if rng.random() < 0.5:
        return _cap(f"{subject} had never cared much for {rng.choice(V.ABSTRACTS)}.")
    return _cap(f"{subject} thought of {rng.choice(V.MEMORIES)} and {rng.choice(V.FEELINGS)}.")


def _there_was(rng: random.Random) -> str:
    noun = f"{rng.choice(V.THING_ADJECTIVES)} {rng.choice(V.THINGS)}"
    when = f" {rng.choice(V.TIME_PHRASES)}" if rng.random() < 0.4 else ""
    return f"There was {_a(noun)} on the {rng.choice(V.SURFACES)}{when}."


def _time(rng: random.Random) -> str:
    return f"It was {rng.choice(V.TIME_PHRASES)} before {_person(rng)} {_movement(rng)}."


def _report(rng: random.Random) -> str:
    verb = rng.choice(("reported", "announced", "declared", "claimed"))
    return f"{rng.choice(V.NEWSPAPERS)} {verb} that {rng.choice(V.REPORTS)}."


def _short(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(V.SHORT_SENTENCES)
    return _cap(f"{rng.choice(('he', 'she', 'they'))} {rng.choice(V.INTRANSITIVE_VERBS)}.")


_TEMPLATES: tuple[tuple[Callable[[random.Random], str], float], ...] = (
    (_simple, 0.24), (_clause_first, 0.1), (_compound, 0.1), (_relative, 0.07), (_description, 0.09),
    (_weather, 0.05), (_dialogue, 0.12), (_reflection, 0.06), (_there_was, 0.05), (_time, 0.04),
    (_report, 0.02), (_short, 0.06),
)
_FUNCTIONS = tuple(f for f, _ in _TEMPLATES)
_WEIGHTS = tuple(w for _, w in _TEMPLATES)


def sentence(rng: random.Random) -> str:
    """One sentence of prose."""
    return rng.choices(_FUNCTIONS, _WEIGHTS)[0](rng)


def sentences(rng: random.Random, n: int) -> list[str]:
    return [sentence(rng) for _ in range(n)]
