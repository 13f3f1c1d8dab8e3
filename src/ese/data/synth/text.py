"""Sentence grammar over our own word list: thousands of distinct 4-12 word English sentences.

Every word is written by us for this project and is a plain lower-case alphabetic token that both
festival's CMU lexicon and espeak-ng's English dictionary pronounce without text normalisation.
Verbs are in the past tense so that no subject-verb agreement is needed.
"""

from __future__ import annotations

import random

DETERMINERS = ("the", "a", "this", "that", "every", "one", "my", "your", "our", "their", "his", "her")
PRONOUNS = ("she", "he", "they", "we", "you", "i")
NAMES = (
    "anna", "peter", "maria", "john", "linda", "david", "susan", "robert", "helen", "thomas",
    "karen", "george", "laura", "james", "emily", "daniel", "sarah", "michael", "julia", "frank",
    "alice", "henry", "nancy", "walter", "grace", "edward", "ruth", "martin", "carol", "oliver",
)
ADJECTIVES = (
    "old", "young", "small", "large", "quiet", "loud", "bright", "dark", "warm", "cold", "green",
    "red", "blue", "yellow", "white", "black", "brown", "heavy", "light", "clever", "gentle",
    "happy", "sad", "tired", "busy", "careful", "strange", "simple", "famous", "friendly", "narrow",
    "wide", "long", "short", "tall", "soft", "rough", "smooth", "sharp", "empty", "full", "early",
    "late", "lazy", "proud", "angry", "calm", "rich", "poor", "fresh", "sweet", "bitter", "wooden",
    "silver", "golden", "distant", "hidden", "broken", "curious", "patient",
)
NOUNS = (
    "dog", "cat", "horse", "bird", "farmer", "teacher", "doctor", "sailor", "child", "woman", "man",
    "girl", "boy", "king", "queen", "baker", "driver", "artist", "student", "neighbor", "captain",
    "house", "garden", "river", "bridge", "window", "table", "chair", "letter", "book", "story",
    "song", "road", "village", "city", "market", "forest", "mountain", "island", "boat", "train",
    "car", "bicycle", "kitchen", "door", "wall", "lamp", "clock", "basket", "bottle", "box", "coat",
    "hat", "shoe", "apple", "orange", "bread", "cheese", "cake", "coffee", "kettle", "candle",
    "picture", "mirror", "ladder", "bucket", "fence", "field", "meadow", "lake", "beach", "shell",
    "stone", "feather", "blanket", "pillow", "carpet", "engine", "hammer", "needle", "thread",
    "pocket", "wallet", "ticket", "paper", "pencil", "camera", "radio", "piano", "violin", "drum",
    "flower", "tree", "branch", "leaf", "cloud", "storm", "winter", "summer", "morning", "evening",
    "office", "station", "library", "museum", "castle", "tower", "cottage", "barn", "wagon", "rope",
    "puppy", "rabbit", "turtle", "monkey", "tiger", "lion", "goat", "sheep", "chicken", "fish",
)
VERBS_T = (
    "saw", "found", "took", "brought", "carried", "painted", "opened", "closed", "cleaned",
    "washed", "fixed", "bought", "sold", "liked", "watched", "followed", "pushed", "pulled",
    "dropped", "lifted", "moved", "visited", "helped", "called", "chased", "caught", "held",
    "kept", "left", "lost", "made", "needed", "noticed", "packed", "picked", "placed", "reached",
    "showed", "touched", "wanted", "wrapped", "cooked", "tasted", "borrowed", "counted", "covered",
    "filled", "ordered", "remembered", "described", "greeted", "hid", "built", "drew",
)
VERBS_I = (
    "slept", "smiled", "laughed", "waited", "arrived", "stayed", "walked", "ran", "danced",
    "listened", "rested", "worked", "played", "sang", "shouted", "whispered", "jumped", "returned",
    "disappeared", "trembled", "wandered", "hurried", "paused", "sighed", "stopped", "swam",
)
ADVERBS = (
    "quickly", "slowly", "quietly", "loudly", "happily", "carefully", "suddenly", "gently",
    "again", "today", "yesterday", "early", "later", "outside", "inside", "together", "alone",
    "twice", "often", "rarely", "finally", "nearly", "almost", "badly", "proudly",
)
PREPOSITIONS = (
    "near", "behind", "under", "over", "beside", "inside", "across", "along", "around", "through",
    "toward", "below", "above", "past", "into", "from", "with", "without", "after", "before",
)
CONJUNCTIONS = ("and", "but", "because", "while", "so", "when", "until")

VOWEL_LETTERS = frozenset("aeiou")

MIN_WORDS = 4
MAX_WORDS = 12


def _noun_phrase(rng: random.Random) -> list[str]:
    roll = rng.random()
    if roll < 0.12:
        return [rng.choice(NAMES)]
    if roll < 0.20:
        return [rng.choice(PRONOUNS)]
    words = [rng.choice(NOUNS)]
    adjectives = rng.choices((0, 1, 2), weights=(4, 5, 1))[0]
    for adj in rng.sample(ADJECTIVES, adjectives):
        words.insert(0, adj)
    det = rng.choice(DETERMINERS)
    if det == "a" and words[0][0] in VOWEL_LETTERS:
        det = "an"
    return [det, *words]


def _object_phrase(rng: random.Random) -> list[str]:
    phrase = _noun_phrase(rng)
    if phrase[0] in PRONOUNS:  # objects take no subject pronouns ("saw she")
        return [rng.choice(NAMES)]
    return phrase


def _clause(rng: random.Random) -> list[str]:
    subject = _noun_phrase(rng)
    if rng.random() < 0.6:
        words = [*subject, rng.choice(VERBS_T), *_object_phrase(rng)]
    else:
        words = [*subject, rng.choice(VERBS_I)]
        if rng.random() < 0.5:
            words.append(rng.choice(ADVERBS))
    if rng.random() < 0.45:
        words += [rng.choice(PREPOSITIONS), *_object_phrase(rng)]
    elif rng.random() < 0.2:
        words.append(rng.choice(ADVERBS))
    return words


def _sentence(rng: random.Random) -> list[str]:
    words = _clause(rng)
    if rng.random() < 0.3:
        words += [rng.choice(CONJUNCTIONS), *_clause(rng)]
    return words


def sentence_pool(count: int, seed: int) -> list[tuple[str, ...]]:
    """``count`` distinct sentences (tuples of words) of 4-12 words, deterministic in ``seed``."""
    rng = random.Random(f"ese-synth-text-{seed}")
    seen: set[tuple[str, ...]] = set()
    out: list[tuple[str, ...]] = []
    tries = 0
    while len(out) < count:
        tries += 1
        if tries > 50 * count + 1000:  # the grammar has ~1e12 sentences; this is a bug guard
            raise RuntimeError(f"sentence grammar produced only {len(out)} of {count} sentences")
        words = tuple(_sentence(rng))
        if MIN_WORDS <= len(words) <= MAX_WORDS and words not in seen:
            seen.add(words)
            out.append(words)
    return out


def sentence_text(words: tuple[str, ...]) -> str:
    """TIMIT .TXT style: capitalised first word and names, ``I``, and a final period."""
    names = frozenset(NAMES)
    shown = ["I" if w == "i" else w.capitalize() if w in names else w for w in words]
    shown[0] = shown[0][:1].upper() + shown[0][1:]
    return " ".join(shown) + "."


def all_words() -> frozenset[str]:
    """Every word the grammar can emit."""
    return frozenset((*DETERMINERS, "an", *PRONOUNS, *NAMES, *ADJECTIVES, *NOUNS, *VERBS_T,
                      *VERBS_I, *ADVERBS, *PREPOSITIONS, *CONJUNCTIONS))
