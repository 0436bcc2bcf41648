"""Student Records: a database of one-line records and recall / relation / aggregation questions over it."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

QTYPES = ("recall", "relation", "aggregation")
FIRST_NAMES = (
    "Aaron", "Abigail", "Adrian", "Aisha", "Alan", "Alice", "Amara", "Andre", "Anna", "Arjun", "Beatriz", "Ben",
    "Bianca", "Carlos", "Chen", "Chloe", "Daria", "David", "Diego", "Elena", "Elif", "Emma", "Erik", "Fatima",
    "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jamal", "Jana", "Joao", "Jonas", "Kai", "Kenji", "Lara",
    "Leon", "Lina", "Luca", "Maya", "Mei", "Milan", "Nadia", "Nikhil", "Nora", "Omar", "Paula", "Priya", "Rafael",
    "Rosa", "Sami", "Sara", "Sofia", "Tariq", "Tomas", "Uma", "Victor", "Yara", "Yusuf", "Zoe", "Zhang",
)
LAST_NAMES = (
    "Abbott", "Adeyemi", "Alvarez", "Andersen", "Baker", "Banerjee", "Becker", "Bianchi", "Brooks", "Castro",
    "Chandra", "Choi", "Costa", "Dubois", "Eriksen", "Farah", "Fischer", "Garcia", "Gomez", "Haddad", "Hansen",
    "Hoffmann", "Ito", "Ivanova", "Jensen", "Kaur", "Kim", "Kowalski", "Larsen", "Lopez", "Martin", "Meyer",
    "Moreno", "Murphy", "Nakamura", "Nguyen", "Novak", "Okafor", "Olsen", "Patel", "Petrov", "Quinn", "Reyes",
    "Rossi", "Sato", "Schmidt", "Silva", "Singh", "Suzuki", "Tanaka", "Torres", "Urban", "Varga", "Wagner",
    "Walsh", "Weber", "Yilmaz", "Young", "Zimmer", "Zhou",
)
YEARS = ("Freshman", "Sophomore", "Junior", "Senior")
YEAR_PLURALS = {"Freshman": "Freshmen", "Sophomore": "Sophomores", "Junior": "Juniors", "Senior": "Seniors"}
SCHOOLS = {
    "School of Engineering": ("Civil Engineering", "Mechanical Engineering", "Electrical Engineering",
                              "Computer Science"),
    "School of Arts and Sciences": ("History", "Physics", "Mathematics", "Biology", "Philosophy", "Chemistry"),
    "School of Business": ("Accounting", "Finance", "Marketing", "Economics"),
    "School of Law": ("Law", "Criminology", "International Relations"),
    "School of Medicine": ("Medicine", "Pharmacology", "Public Health"),
    "School of Music": ("Composition", "Music Theory", "Performance"),
    "School of Education": ("Early Childhood Education", "Special Education"),
    "School of Nursing": ("Nursing", "Midwifery"),
}
GRADES = (55, 100)
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")


@dataclass(frozen=True)
class Student:
    id: int
    name: str
    year: str
    school: str
    major: str
    grade: int

    def text(self) -> str:
        return (f"Student {self.id}, Name: {self.name}, Year: {self.year}, School: {self.school}, "
                f"Major: {self.major}, Grade: {self.grade}")


@dataclass
class Question:
    qtype: str
    question: str
    answer: list[str]
    support: list[Student]


class StudentDrawer:
    """Draws students with distinct ids."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.ids: set[int] = set()

    def draw(self) -> Student:
        rng = self.rng
        student_id = rng.randrange(1000, 100000)
        while student_id in self.ids:
            student_id = rng.randrange(1000, 100000)
        self.ids.add(student_id)
        school = rng.choice(tuple(SCHOOLS))
        return Student(student_id, f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}", rng.choice(YEARS),
                       school, rng.choice(SCHOOLS[school]), rng.randint(*GRADES))


def ask(rng: random.Random, students: list[Student], qtype: str) -> Question | None:
    """A question of ``qtype`` about the database; None when this database has none (e.g. all grades tied)."""
    names = Counter(s.name for s in students)

    def ref(s: Student) -> str:
        return s.name if names[s.name] == 1 and rng.random() < 0.6 else f"Student {s.id}"

    def who(s: Student) -> list[str]:
        return [s.name, f"Student {s.id}"] if names[s.name] == 1 else [f"Student {s.id}"]

    makers: dict[str, Callable[[], Question | None]] = {
        "recall": lambda: _recall(rng, rng.choice(students), ref),
        "relation": lambda: _relation(rng, students, ref, who),
        "aggregation": lambda: _aggregation(rng, students),
    }
    return makers[qtype]()


def _recall(rng: random.Random, s: Student, ref: Callable[[Student], str]) -> Question:
    field = rng.choice(("name", "year", "school", "major", "grade"))
    question = {
        "name": f"What is the name of Student {s.id}?",
        "year": f"What year is {ref(s)} in?",
        "school": f"Which school is {ref(s)} in?",
        "major": f"What is the major of {ref(s)}?",
        "grade": f"What grade does {ref(s)} have?",
    }[field]
    return Question("recall", question, [str(getattr(s, field))], [s])


def _relation(rng: random.Random, students: list[Student], ref: Callable[[Student], str],
              who: Callable[[Student], list[str]]) -> Question | None:
    if len(students) < 2:
        return None
    a, b = rng.sample(students, 2)
    kind = rng.choice(("grade", "school", "major", "year"))
    pair = sorted([a, b], key=students.index)
    if kind == "school":
        answer = "yes" if a.school == b.school else "no"
        return Question("relation", f"Are {ref(a)} and {ref(b)} in the same school?", [answer], pair)
    if kind == "major":
        answer = "yes" if a.major == b.major else "no"
        return Question("relation", f"Do {ref(a)} and {ref(b)} have the same major?", [answer], pair)
    if kind == "grade" and a.grade != b.grade:
        best = max(a, b, key=lambda s: s.grade)
        return Question("relation", f"Who has the higher grade, {ref(a)} or {ref(b)}?", who(best), pair)
    if kind == "year" and a.year != b.year:
        senior = max(a, b, key=lambda s: YEARS.index(s.year))
        return Question("relation", f"Who is further along in their studies, {ref(a)} or {ref(b)}?",
                        who(senior), pair)
    return None


def _count_answer(n: int) -> list[str]:
    return [str(n), NUMBER_WORDS[n]] if n < len(NUMBER_WORDS) else [str(n)]


def _aggregation(rng: random.Random, students: list[Student]) -> Question:
    kind = rng.choice(("school", "max_grade", "year_in_major"))
    pick = rng.choice(students)
    if kind == "school":
        matches = [s for s in students if s.school == pick.school]
        return Question("aggregation", f"How many students are in the {pick.school}?", _count_answer(len(matches)),
                        matches)
    if kind == "max_grade":
        matches = [s for s in students if s.major == pick.major]
        return Question("aggregation", f"What is the highest grade among students majoring in {pick.major}?",
                        [str(max(s.grade for s in matches))], matches)
    matches = [s for s in students if s.major == pick.major and s.year == pick.year]
    return Question("aggregation", f"How many {YEAR_PLURALS[pick.year]} are majoring in {pick.major}?",
                    _count_answer(len(matches)), matches)
