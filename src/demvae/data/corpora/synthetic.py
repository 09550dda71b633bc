"""The built-in corpus ("builtin"): short assistant requests generated from a known structure, no download needed.

Every utterance has two labels: ``intent`` (8 classes, each signalled by its own content words: weather / forecast /
rain, remind, directions / route, play / music, table / reservation, call / phone, alarm / wake, calendar / meetings)
and ``style`` (polite / casual / terse, signalled by fillers such as "could you please", "hey ... gonna", or their
absence). A sentence is a template of its (intent, style) cell with slot values (cities, days, times, people,
songs, restaurants, ...) filled in, so slots add variety within an intent. Sentences are 4-14 tokens long and the
vocabulary has a few hundred words. Generation is deterministic given ``seed`` (``random.Random``).
"""

from __future__ import annotations

import random

from demvae.data.types import SPLITS, Corpus, Example
from demvae.errors import DataError

INTENTS = [
    "ask_weather",
    "set_reminder",
    "navigate",
    "play_music",
    "book_table",
    "call_contact",
    "set_alarm",
    "check_calendar",
]
STYLES = ["polite", "casual", "terse"]

SLOTS: dict[str, list[str]] = {
    "city": ["paris", "london", "tokyo", "berlin", "boston", "chicago", "madrid", "rome", "seattle", "denver",
             "dublin", "oslo", "lisbon", "vienna"],
    "day": ["today", "tomorrow", "tonight", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
            "sunday", "this weekend", "next week"],
    "time": ["six am", "seven am", "seven thirty", "eight pm", "nine am", "ten pm", "noon", "midnight",
             "five thirty", "half past six", "quarter to eight", "eleven am"],
    "task": ["buy milk", "pay the rent", "water the plants", "take my pills", "pick up the kids",
             "send the report", "feed the cat", "return the library books", "renew my passport", "email the bank"],
    "place": ["the airport", "the train station", "the nearest gas station", "the city center", "the hospital",
              "the office", "the mall", "the museum", "my hotel", "the beach", "the stadium", "the university"],
    "music": ["some jazz", "some rock", "relaxing piano", "my workout playlist", "the latest hits",
              "classical music", "country songs", "lofi beats", "old school hip hop", "something upbeat",
              "the beatles", "taylor swift"],
    "restaurant": ["the golden dragon", "bella italia", "the blue fern", "casa verde", "the sushi bar",
                   "the corner bistro", "green garden", "the steak house", "le petit cafe", "spice route"],
    "n": ["two", "three", "four", "five", "six", "eight"],
    "person": ["mom", "dad", "john", "sarah", "my boss", "the dentist", "alex", "emma", "david", "grandma",
               "my sister", "the plumber"],
}

# TEMPLATES[intent][style] -> templates; {slot} is replaced by a value of SLOTS[slot].
TEMPLATES: dict[str, dict[str, list[str]]] = {
    "ask_weather": {
        "polite": ["could you please tell me the weather in {city} {day} ?",
                   "i would like to know the weather forecast for {city} , please",
                   "would you kindly check if it will rain in {city} {day} ?",
                   "please tell me the temperature in {city} {day} , thank you"],
        "casual": ["hey how is the weather in {city} {day} ?",
                   "yo is it gonna rain in {city} {day} ?",
                   "hey what is the forecast looking like for {city} ?",
                   "gonna need a jacket ? weather in {city} {day}"],
        "terse": ["weather in {city} {day}", "forecast {city} {day} ?", "rain in {city} {day} ?",
                  "temperature in {city} now"],
    },
    "set_reminder": {
        "polite": ["could you please remind me to {task} {day} ?",
                   "i would like a reminder to {task} , please",
                   "would you kindly set a reminder to {task} ?",
                   "please remind me to {task} , thanks"],
        "casual": ["hey remind me to {task} {day} , ok ?",
                   "yo set a reminder , don t forget to {task}",
                   "hey gonna need a reminder to {task} at {time}",
                   "remind me to {task} later , cool ?"],
        "terse": ["remind me : {task} {day}", "reminder {task} at {time}", "reminder : {task}",
                  "remind {task} {time}"],
    },
    "navigate": {
        "polite": ["could you please give me directions to {place} ?",
                   "i would like the fastest route to {place} , please",
                   "would you kindly navigate me to {place} ?",
                   "please show me how to drive to {place} , thank you"],
        "casual": ["hey how do i get to {place} from here ?",
                   "yo take me to {place} real quick",
                   "hey what is the best route to {place} ?",
                   "gonna drive to {place} , show me the way"],
        "terse": ["directions to {place}", "route to {place} now", "navigate to {place}",
                  "fastest route {place}"],
    },
    "play_music": {
        "polite": ["could you please play {music} for me ?",
                   "i would like to listen to {music} , please",
                   "would you kindly put on {music} ?",
                   "please play some music like {music} , thank you"],
        "casual": ["hey play {music} real quick",
                   "yo put on {music} , turn it up",
                   "hey wanna hear some music , play {music}",
                   "gonna need some {music} right now"],
        "terse": ["play {music} now", "play music : {music}", "music : {music} please", "shuffle {music} songs"],
    },
    "book_table": {
        "polite": ["could you please book a table for {n} at {restaurant} ?",
                   "i would like a dinner reservation at {restaurant} , please",
                   "would you kindly reserve a table for {n} {day} ?",
                   "please book {restaurant} for {n} at {time} , thank you"],
        "casual": ["hey get us a table at {restaurant} {day}",
                   "yo book a table for {n} at {restaurant}",
                   "hey wanna grab dinner at {restaurant} , make a reservation",
                   "gonna need a table for {n} at {time}"],
        "terse": ["table for {n} at {restaurant}", "reservation {restaurant} {day} for {n}",
                  "book table {restaurant} {time}", "dinner reservation for {n}"],
    },
    "call_contact": {
        "polite": ["could you please call {person} for me ?",
                   "i would like to phone {person} , please",
                   "would you kindly dial {person} ?",
                   "please place a call to {person} , thank you"],
        "casual": ["hey call {person} real quick",
                   "yo ring {person} for me",
                   "hey gonna phone {person} , dial it",
                   "hey get {person} on the phone"],
        "terse": ["call {person} right away", "call {person} on mobile", "dial {person} right now",
                  "phone call to {person}"],
    },
    "set_alarm": {
        "polite": ["could you please set an alarm for {time} ?",
                   "i would like to wake up at {time} {day} , please",
                   "would you kindly wake me at {time} ?",
                   "please set my alarm for {time} , thank you"],
        "casual": ["hey wake me up at {time} , ok ?",
                   "yo set an alarm for {time}",
                   "hey gonna need an alarm at {time} {day}",
                   "alarm at {time} please , cool ?"],
        "terse": ["alarm at {time} .", "alarm for {time} {day}", "wake me at {time}", "set alarm for {time}"],
    },
    "check_calendar": {
        "polite": ["could you please check my calendar for {day} ?",
                   "i would like to know my schedule for {day} , please",
                   "would you kindly tell me what meetings i have {day} ?",
                   "please read my calendar for {day} , thank you"],
        "casual": ["hey what is on my calendar {day} ?",
                   "yo do i have any meetings {day} ?",
                   "hey am i free {day} or is my schedule full ?",
                   "gonna be busy {day} ? check my calendar"],
        "terse": ["calendar for {day} ?", "any meetings {day} ?", "my schedule for {day}", "check my calendar {day}"],
    },
}


def _fill(template: str, rng: random.Random) -> tuple[str, ...]:
    out: list[str] = []
    for word in template.split():
        if word.startswith("{") and word.endswith("}"):
            out.extend(rng.choice(SLOTS[word[1:-1]]).split())
        else:
            out.append(word)
    return tuple(out)


def generate(n: int, rng: random.Random) -> list[Example]:
    """``n`` examples: intent and style uniform, then a template of that cell, then slot values."""
    examples = []
    for _ in range(n):
        i = rng.randrange(len(INTENTS))
        s = rng.randrange(len(STYLES))
        tokens = _fill(rng.choice(TEMPLATES[INTENTS[i]][STYLES[s]]), rng)
        examples.append(Example(tokens, {"intent": i, "style": s}))
    return examples


def load_builtin(seed: int = 0, n_train: int = 8000, n_valid: int = 500, n_test: int = 500) -> Corpus:
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}
    for split, n in sizes.items():
        if not isinstance(n, int) or n < 1:
            raise DataError(f"builtin corpus: n_{split} must be a positive integer, got {n!r}")
    master = random.Random(seed)
    split_seeds = {split: master.getrandbits(64) for split in SPLITS}
    splits = {split: generate(sizes[split], random.Random(split_seeds[split])) for split in SPLITS}
    return Corpus(
        name="builtin",
        splits=splits,
        label_names={"intent": list(INTENTS), "style": list(STYLES)},
        description=(
            f"built-in synthetic assistant requests (seed {seed}): {len(INTENTS)} intents x {len(STYLES)} styles, "
            "templates with slot values"
        ),
    )
