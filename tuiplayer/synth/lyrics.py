"""Lyric lines and singers: what the vocals sing and which espeak-ng voices sing it.

Lines are mostly one-syllable words, so one word fits one note; a word can be stretched over
several notes (melisma). The espeak-ng voice variants below were checked on this system: the
male ones speak around 90–140 Hz, the female ones around 170–290 Hz.
"""

from __future__ import annotations

LINES: dict[str, tuple[str, ...]] = {
    "en": (
        "I can feel the night come down", "hold me close and don't let go", "we run like fire through the dark",
        "you are the light in my eyes", "all I need is you right now", "take my hand and we will fly",
        "the stars will fall but we stay young", "don't you cry it's all right", "I see the sky turn gold",
        "come back home to me", "we were born to burn so bright", "all the lights go down",
        "I know you feel it too", "lost in the sound of your heart", "one more time just one more night",
        "say the word and I will stay", "the road is long but I'm not done", "you and me we fade like smoke",
        "dance with me till the sun comes up", "I've been down but now I rise", "can't stop this fire in my soul",
        "we are the kings of the street", "your love is all I want", "in the cold I call your name",
        "no more tears no more lies", "let it rain let it pour", "feel the beat in your bones",
        "we go high we go low", "my heart beats for you", "now the time has come to go",
        "oh oh oh yeah", "hey hey hey", "na na na na", "la la la la",
    ),
    "es": (
        "ven a mi la luz del mar", "yo te doy mi voz y mi fe", "sin ti no soy nada", "la vida va y no se fue",
        "dame tu mano ya", "en la noche sin fin", "mi sol mi paz mi bien", "todo el mar es para ti",
        "no me dejes solo hoy", "bailar bajo la luz", "oh oh oh", "la la la",
    ),
    "it": (
        "tu sei la mia luce", "per te io canto ancora", "la notte non ha fine", "vieni qui con me",
        "il mare e il sole", "non ti lascio mai", "sei tu il mio cuore", "oh oh oh",
    ),
    "pt-br": (
        "eu vou te dar meu mar", "sem voce nao sei viver", "a luz do sol em mim", "vem dançar comigo",
        "meu amor meu bem", "a noite vai passar", "oh oh oh",
    ),
    "de": (
        "ich bin frei in der nacht", "du bist mein licht", "wir gehen nie mehr fort", "komm zu mir heut nacht",
        "das herz schlägt laut", "so weit so hoch", "oh oh oh",
    ),
    "fr-fr": (
        "je suis la pour toi", "la nuit est a nous", "mon coeur bat pour toi", "viens danser ce soir",
        "le ciel est bleu", "tu es ma vie", "oh oh oh",
    ),
}
"""Lyric lines per espeak-ng language."""

RAP_LINES: tuple[str, ...] = (
    "yeah we came up from the block with the crew and we never stop",
    "check it one two this is how we do it on the mic tonight",
    "money on my mind but the time keeps ticking and I keep it moving",
    "all my people in the back put your hands up high let me see you move",
    "stay true to the game never change for the fame that's the rule",
    "from the bottom to the top we keep going and we never drop",
    "I got the beat and the heat and the flow in the street",
    "back in the day we had nothing but a dream and a plan",
)
"""Rapped lines (English)."""

MALE_VOICES: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "adam", "Alex", "Andy", "antonio", "benjamin", "caleb", "ed",
    "edward", "Gene", "gustave", "Jacky", "john", "marcelo", "Mario", "max", "Michael", "michel", "miguel",
    "Mike", "pablo", "paul", "quincy", "rob", "norbert", "sandro", "victor", "klatt", "klatt2", "klatt4", "Lee",
    "Denis", "Hugo",
)
FEMALE_VOICES: tuple[str, ...] = (
    "f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "aunty", "belinda", "linda", "steph", "anika",
    "shelby",
)
"""espeak-ng voice variants (appended to a language as "en-us+f3")."""

ENGLISH_ACCENTS: tuple[str, ...] = ("en-us", "en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc")
"""espeak-ng English voices (accents) to sing English lines with."""

LANGUAGE_WEIGHTS: dict[str, float] = {"en": 0.72, "es": 0.08, "it": 0.05, "pt-br": 0.05, "de": 0.05, "fr-fr": 0.05}
"""How often each lyric language is drawn."""

FILLER_WORDS: tuple[str, ...] = ("oh", "yeah", "ooh", "ah")
"""Sung when a phrase has more notes than its line has words."""
