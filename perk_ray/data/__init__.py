"""Long-context task data: one record schema, generators (BabiLong-style qa1-qa5, Student Records, key-value
recall), loaders for real data (BabiLong, HotpotQA, TriviaQA), splits without leakage, Parquet/JSONL I/O."""

from perk_ray.data.generation import generate
from perk_ray.data.io import (
    read_records,
    records_from_rows,
    to_hf_dataset,
    to_ray_dataset,
    write_jsonl,
    write_parquet,
)
from perk_ray.data.loaders import load_babilong, load_hotpotqa, load_triviaqa
from perk_ray.data.parse import parse_fractions, parse_length, parse_lengths
from perk_ray.data.schema import ARROW_SCHEMA, SEGMENT_SEPARATOR, TaskRecord
from perk_ray.data.splits import DEFAULT_FRACTIONS, make_splits
from perk_ray.data.summary import summarize
from perk_ray.data.tasks import TASKS, answer_labels
from perk_ray.data.tokenizers import TokenCounter, resolve_tokenizer

__all__ = [
    "ARROW_SCHEMA", "DEFAULT_FRACTIONS", "SEGMENT_SEPARATOR", "TASKS", "TaskRecord", "TokenCounter",
    "answer_labels", "generate", "load_babilong", "load_hotpotqa", "load_triviaqa", "make_splits",
    "parse_fractions", "parse_length", "parse_lengths", "read_records", "records_from_rows", "resolve_tokenizer",
    "summarize", "to_hf_dataset", "to_ray_dataset", "write_jsonl", "write_parquet",
]
