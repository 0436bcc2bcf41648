"""The generated tasks: one builder per task turns a seeded RNG into a draft record, plus answer label sets."""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from perk_ray.data import babi, kv, students
from perk_ray.data.haystack import TOLERANCE, ContextTooLong, embed_in_prose
from perk_ray.data.packing import Unit, pack
from perk_ray.data.schema import SEGMENT_SEPARATOR
from perk_ray.data.tokenizers import TokenCounter
from perk_ray.errors import InputError

BABILONG_TASKS = tuple(f"babilong-qa{i}" for i in range(1, 6))
TASKS = (*BABILONG_TASKS, "student-records", "kv-recall")
_MAX_DRAWS = 1000


@dataclass
class Draft:
    """A record before its metadata: segments, supporting facts with their start characters, question, answers."""

    segments: list[str]
    support: list[str]
    support_offsets: list[int]
    question: str
    answer: list[str]
    num_facts: int
    source_key: str = ""  # the text that identifies the story / record set (generated tasks)
    qtype: str = ""
    tokens: int | None = None  # exact token count of the joined context, when the builder has it


Builder = Callable[..., Draft]


def check_task(task: str) -> None:
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")


def task_builder(task: str, options: dict[str, Any]) -> Callable[[random.Random, int | None, TokenCounter], Draft]:
    """The builder of ``task`` with its options bound; unknown option names are refused."""
    check_task(task)
    builder = _BUILDERS[task]
    allowed = [p for p in inspect.signature(builder).parameters.values() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - {p.name for p in allowed})
    if unknown:
        listed = ", ".join(f"{p.name}={p.default!r}" for p in allowed) or "none"
        raise InputError(f"unknown option {unknown[0]!r} for task {task}; its options: {listed}")
    return lambda rng, target, counter: builder(rng, target, counter, **options)


def answer_labels(task: str) -> list[str]:
    """The fixed answer label set of a task for BabiLong-style scoring (empty where answers are open)."""
    check_task(task)
    if task == "babilong-qa5":
        return sorted(babi.QA5_PEOPLE + babi.OBJECTS)
    if task in BABILONG_TASKS:
        return sorted(babi.LOCATIONS)
    if task == "kv-recall":
        return list(kv.VALUES)
    return []


def _offsets(segments: Sequence[str]) -> list[int]:
    starts, position = [], 0
    for segment in segments:
        starts.append(position)
        position += len(segment) + len(SEGMENT_SEPARATOR)
    return starts


def _place(facts: list[str], support: list[int], target: int | None, counter: TokenCounter, rng: random.Random,
           depth: float | None) -> tuple[list[str], list[int], int | None]:
    """Segments and support offsets: one segment per fact without a target, else facts hidden in prose."""
    if depth is not None and not 0.0 <= depth <= 1.0:
        raise InputError(f"depth={depth} is outside [0, 1]")
    if target is None:
        starts = _offsets(facts)
        return list(facts), [starts[i] for i in support], None
    layout = embed_in_prose(facts, target_tokens=target, counter=counter, rng=rng, depth=depth)
    return layout.segments, [layout.fact_offsets[i] for i in support], layout.tokens


def _fact_range(qa: str, facts: int | Sequence[int] | None) -> tuple[int, int]:
    if facts is None:
        return babi.TASK_FACTS[qa]
    bounds = (facts, facts) if isinstance(facts, int) else tuple(facts)
    most = len(babi.LOCATIONS) - 1 if qa == "qa4" else 500
    if len(bounds) != 2 or not all(isinstance(b, int) for b in bounds) or not 1 <= bounds[0] <= bounds[1] <= most:
        raise InputError(f"facts={facts!r} for {qa}: give n or (low, high) with 1 <= low <= high <= {most}")
    return bounds[0], bounds[1]


def _babilong(qa: str) -> Builder:
    def build(rng: random.Random, target: int | None, counter: TokenCounter, *,
              facts: int | Sequence[int] | None = None, depth: float | None = None) -> Draft:
        low, high = _fact_range(qa, facts)
        for _ in range(_MAX_DRAWS):
            n = rng.randint(low, high)
            story = babi.make_story(qa, rng, n)
            if story is None:
                continue
            try:
                segments, offsets, tokens = _place(story.facts, story.support, target, counter, rng, depth)
            except ContextTooLong as exc:
                if n == low:
                    raise InputError(f"babilong-{qa} with facts={low}: {exc}") from None
                high = n - 1
                continue
            return Draft(segments, [story.facts[i] for i in story.support], offsets, story.question,
                         [story.answer], len(story.facts), "\n".join(story.facts), tokens=tokens)
        raise InputError(f"no babilong-{qa} story with a valid question in {_MAX_DRAWS} draws of facts={facts!r}")

    return build


def _kv_recall(rng: random.Random, target: int | None, counter: TokenCounter, *, num_pairs: int = 4,
               depth: float | None = None) -> Draft:
    if not 1 <= num_pairs <= len(kv.KEYS):
        raise InputError(f"num_pairs={num_pairs} is outside [1, {len(kv.KEYS)}]")
    drawn = kv.make_facts(rng, num_pairs)
    segments, offsets, tokens = _place(drawn.facts, [drawn.asked], target, counter, rng, depth)
    return Draft(segments, [drawn.facts[drawn.asked]], offsets, drawn.question, [drawn.answer], num_pairs,
                 "\n".join(drawn.facts), tokens=tokens)


def _student_records(rng: random.Random, target: int | None, counter: TokenCounter, *, num_students: int = 20,
                     qtypes: str | Sequence[str] = students.QTYPES) -> Draft:
    qtypes = (qtypes,) if isinstance(qtypes, str) else tuple(qtypes)
    if not qtypes or set(qtypes) - set(students.QTYPES):
        raise InputError(f"qtypes={qtypes!r}: choose among {', '.join(students.QTYPES)}")
    if num_students < 2:
        raise InputError(f"num_students={num_students} is below 2")
    drawer = students.StudentDrawer(rng)
    if target is None:
        database = [drawer.draw() for _ in range(num_students)]
    else:
        database = _fill_database(drawer, target, counter)
    for _ in range(_MAX_DRAWS):
        asked = students.ask(rng, database, rng.choice(qtypes))
        if asked is not None:
            break
    else:
        raise InputError(f"no {'/'.join(qtypes)} question found for a database of {len(database)} students")
    segments = [s.text() for s in database]
    starts = _offsets(segments)
    position = {s.id: i for i, s in enumerate(database)}
    offsets = [starts[position[s.id]] for s in asked.support]
    return Draft(segments, [s.text() for s in asked.support], offsets, asked.question, asked.answer, len(database),
                 "\n".join(segments), asked.qtype)


def _fill_database(drawer: students.StudentDrawer, target: int, counter: TokenCounter) -> list[students.Student]:
    """Records (one segment each) filling ``target`` tokens, the separators included."""
    separator = counter.count(SEGMENT_SEPARATOR)

    def draw(n: int) -> list[Unit]:
        batch = [drawer.draw() for _ in range(n)]
        return [(s, size + separator) for s, size in zip(batch, counter.count_many([s.text() for s in batch]))]

    chosen = [s for s, _ in pack(target + separator, draw, int(target * TOLERANCE))]
    if len(chosen) < 2:
        raise InputError(f"target length {target} tokens is too short for student-records (two records at least)")
    drawer.rng.shuffle(chosen)
    return chosen


_BUILDERS: dict[str, Builder] = {
    **{task: _babilong(task.removeprefix("babilong-")) for task in BABILONG_TASKS},
    "student-records": _student_records,
    "kv-recall": _kv_recall,
}
