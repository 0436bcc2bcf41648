"""Key-value recall facts: ``The code of lemon is seven.`` with distinct keys and digit-word values."""

from __future__ import annotations

import random
from dataclasses import dataclass

VALUES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
KEYS = (
    "lemon", "mango", "cherry", "plum", "peach", "olive", "walnut", "almond", "ginger", "pepper", "cinnamon",
    "saffron", "basil", "cobalt", "amber", "jade", "ruby", "topaz", "opal", "pearl", "falcon", "otter", "badger",
    "heron", "lynx", "bison", "cobra", "koala", "panda", "tiger", "zebra", "cactus", "tulip", "daisy", "orchid",
    "lotus", "maple", "willow", "cedar", "birch", "comet", "nebula", "quartz", "marble", "granite", "copper",
    "nickel", "zinc", "banana", "melon", "kiwi", "papaya", "radish", "turnip", "carrot", "onion", "garlic",
    "beetle", "moth", "wasp", "salmon", "trout", "walrus", "penguin",
)


@dataclass
class KeyValueFacts:
    facts: list[str]
    asked: int  # index of the fact the question is about
    question: str
    answer: str


def make_facts(rng: random.Random, num_pairs: int) -> KeyValueFacts:
    keys = rng.sample(KEYS, num_pairs)
    values = [rng.choice(VALUES) for _ in keys]
    asked = rng.randrange(num_pairs)
    facts = [f"The code of {key} is {value}." for key, value in zip(keys, values)]
    return KeyValueFacts(facts, asked, f"What is the code of {keys[asked]}?", values[asked])
