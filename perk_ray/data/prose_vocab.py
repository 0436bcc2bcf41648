"""Vocabulary of the haystack prose: a nineteenth-century novel register.

No word here may be a task label or entity (bAbI people, rooms, objects, compass directions, digit words,
key-value keys): tests check that the haystack never mentions them.
"""

FIRST_NAMES = (
    "Agnes", "Ambrose", "Arabella", "Barnaby", "Beatrix", "Cecily", "Clement", "Cordelia", "Cornelius", "Dorothea",
    "Edmund", "Eleanor", "Esther", "Eustace", "Evangeline", "Ezra", "Felicity", "Gideon", "Harriet", "Henrietta",
    "Horace", "Ignatius", "Isadora", "Jasper", "Leopold", "Lavinia", "Lucius", "Millicent", "Mortimer", "Nathaniel",
    "Ophelia", "Percival", "Philippa", "Prudence", "Rosalind", "Rupert", "Septimus", "Silas", "Theodora",
    "Thaddeus", "Tobias", "Ursula", "Winifred", "Zachary",
)
SURNAMES = (
    "Ashcombe", "Blackwood", "Brampton", "Carrow", "Dunmore", "Ellery", "Fairweather", "Fenwick", "Greaves",
    "Hargreave", "Holloway", "Ingram", "Kettering", "Langley", "Lockhart", "Marlowe", "Merriweather", "Oakhurst",
    "Pemberton", "Pryor", "Quarles", "Ravensworth", "Selwyn", "Sterling", "Thorne", "Tremaine", "Vance", "Wexley",
    "Whitlock", "Yardley",
)
TITLES = ("Mr.", "Mrs.", "Miss", "Dr.", "Captain", "Colonel", "Lady", "Sir", "Father", "Professor")
ROLES = (
    "doctor", "vicar", "widow", "stranger", "innkeeper", "coachman", "sailor", "clerk", "merchant", "shepherd",
    "soldier", "lawyer", "farmer", "miller", "curate", "schoolmaster", "housekeeper", "governess", "blacksmith",
    "stable boy", "fisherman", "magistrate", "surgeon", "pedlar", "landlady", "butler", "carpenter",
    "ferryman", "organist", "postmaster", "watchman", "apothecary", "baker", "painter", "poet", "traveller",
)
RELATIVES = ("brother", "sister", "uncle", "aunt", "cousin", "father", "mother", "son", "daughter", "nephew",
             "niece", "grandmother", "godfather", "guardian")
PEOPLE_GROUPS = ("the children", "the servants", "the guests", "the villagers", "the fishermen", "the sisters",
                 "the old men", "the soldiers", "the travellers", "the mourners", "the neighbours", "the boys")

BUILDINGS = (
    "church", "parlour", "library", "cottage", "inn", "tavern", "chapel", "mill", "station", "cathedral", "study",
    "drawing-room", "stable", "barn", "lighthouse", "castle", "abbey", "manor", "parsonage", "rectory",
    "greenhouse", "conservatory", "gallery", "schoolhouse", "bakery",
)
GROUNDS = (
    "village", "harbour", "market", "orchard", "meadow", "road", "river", "bridge", "moor", "forest", "square",
    "quay", "valley", "shore", "courtyard", "lane", "hill", "churchyard", "town", "estate", "farm", "ridge", "pier",
    "marsh", "vineyard", "terrace", "crossroads", "common", "heath", "lake", "pond", "waterfall",
)
PLACES = BUILDINGS + GROUNDS
THINGS = (
    "letter", "lamp", "candle", "key", "book", "coat", "hat", "basket", "box", "bottle", "pipe", "ring", "portrait",
    "clock", "rope", "lantern", "map", "sword", "shawl", "umbrella", "trunk", "chair", "purse", "cup", "knife",
    "bell", "violin", "telescope", "diary", "locket", "bonnet", "walking stick", "parcel", "ledger", "prayer book",
    "handkerchief", "teapot", "mirror", "blanket", "fiddle", "saddle", "kettle", "bundle of papers", "photograph",
    "pocket watch", "music box", "chessboard", "newspaper",
)
SURFACES = ("table", "mantelpiece", "desk", "windowsill", "dresser", "bench", "shelf", "piano", "sideboard", "hearth")
THING_ADJECTIVES = (
    "old", "grey", "dark", "heavy", "bright", "small", "great", "ancient", "empty", "dusty", "golden", "faded",
    "broken", "worn", "crooked", "damp", "polished", "battered", "peculiar", "handsome", "shabby", "elegant",
    "wooden", "velvet", "rusty", "scarlet", "fragrant", "curious", "familiar", "strange", "weathered", "modest",
    "little", "precious", "borrowed", "forgotten", "splendid", "plain", "costly", "tattered",
)
PLACE_ADJECTIVES = (
    "quiet", "narrow", "distant", "empty", "crowded", "silent", "dusty", "damp", "ancient", "old", "sunlit",
    "frozen", "gloomy", "lonely", "familiar", "strange", "cold", "dark", "great", "small", "crooked", "peaceful",
    "deserted", "windswept", "muddy", "cheerful", "shadowy", "busy", "sleepy", "bleak", "leafy", "stately",
)
PERSON_ADJECTIVES = ("old", "young", "pale", "weary", "anxious", "thoughtful", "restless", "stern", "kindly",
                     "tall", "frail", "proud", "humble", "curious", "lonely", "handsome", "cheerful", "sullen")
# verbs that fit any of the THINGS
TRANSITIVE_VERBS = (
    "carried", "watched", "studied", "examined", "mended", "noticed", "admired", "described", "wrapped", "hid",
    "sold", "bought", "borrowed", "lent", "repaired", "inspected", "cleaned", "sketched", "weighed", "fetched",
    "remembered", "praised", "dusted", "packed", "kept",
)
# verbs that fit only some things
VERB_THINGS = {
    "read": ("letter", "book", "diary", "ledger", "prayer book", "newspaper", "map", "bundle of papers"),
    "wrote": ("letter", "diary", "ledger"),
    "folded": ("letter", "map", "shawl", "blanket", "handkerchief", "newspaper"),
    "opened": ("box", "trunk", "parcel", "book", "diary", "locket", "music box", "umbrella", "letter"),
    "closed": ("box", "trunk", "book", "diary", "locket", "music box", "umbrella"),
    "lit": ("lamp", "candle", "lantern", "pipe"),
    "played": ("violin", "fiddle", "music box"),
    "wound": ("clock", "pocket watch", "music box"),
    "rang": ("bell",),
    "polished": ("ring", "sword", "locket", "mirror", "teapot", "kettle", "pocket watch", "saddle", "bell"),
}
INTRANSITIVE_VERBS = (
    "waited", "hesitated", "smiled", "laughed", "sighed", "wept", "slept", "listened", "paused", "trembled",
    "shrugged", "nodded", "frowned", "whispered", "lingered", "wandered", "stumbled", "prayed", "sang", "coughed",
    "yawned", "shivered", "knelt", "rested", "worked", "read aloud", "kept silent", "stood still", "sat down",
    "looked away",
)
# movements and the places they fit
MOTION_VERBS = {
    "strolled along": ("road", "lane", "shore", "river", "quay", "pier", "ridge", "terrace"),
    "ran along": ("road", "lane", "shore", "river", "quay", "pier"),
    "hurried across": ("square", "bridge", "courtyard", "common", "heath", "moor", "meadow", "market"),
    "crossed": ("square", "bridge", "courtyard", "common", "heath", "moor", "meadow", "river", "lake"),
    "wandered through": ("village", "market", "forest", "orchard", "meadow", "town", "gallery", "vineyard",
                         "churchyard", "library"),
    "rode through": ("village", "forest", "valley", "town", "estate", "heath", "moor"),
    "climbed": ("hill", "ridge"),
    "trudged up": ("hill", "ridge", "lane", "road"),
    "rowed across": ("lake", "river", "harbour", "pond"),
    "paced the length of": ("parlour", "gallery", "terrace", "pier", "quay", "library", "courtyard", "drawing-room"),
    "came out of": BUILDINGS,
    "waited outside": BUILDINGS,
    "drove past": PLACES,
    "walked slowly past": PLACES,
    "lingered near": PLACES,
    "stopped beside": PLACES,
    "looked back at": PLACES,
    "returned from": PLACES,
    "set out for": PLACES,
    "arrived at": PLACES,
}
PERSON_VERBS = ("greeted", "thanked", "questioned", "followed", "watched", "admired", "ignored", "feared",
                "remembered", "praised", "scolded", "visited", "consoled", "embraced", "pitied", "summoned", "avoided",
                "invited", "recognised", "trusted")
PERSON_OBJECTS = ("the doctor", "the vicar", "the stranger", "the innkeeper", "the widow", "the magistrate",
                  "the children", "the coachman", "the governess", "the schoolmaster", "the landlady", "the guests")
ADVERBIALS = (
    "slowly", "quietly", "at last", "once more", "without a word", "for a long while", "in silence",
    "with great care", "rather hastily", "with a sigh", "almost at once", "for the first time",
    "as if in a dream", "with some reluctance", "before anyone noticed", "in the grey light", "by candlelight",
    "with trembling hands", "more than once", "without looking up", "in high spirits", "against all advice",
    "with an air of triumph", "as was the custom", "after a moment", "without hurry", "for no reason at all",
    "with quiet satisfaction", "in the old way", "under the eyes of everyone",
)
TIME_PHRASES = (
    "that morning", "in the evening", "at dusk", "at dawn", "late that night", "in the afternoon", "the next day",
    "after supper", "before breakfast", "on the following Sunday", "early in the spring", "in the depth of winter",
    "at the end of the summer", "on an autumn evening", "a week later", "long after midnight", "at noon",
    "on market day", "during the storm", "the year the river flooded",
)
CLAUSES = (
    "When the bells had ceased", "As the light faded", "Although it was late", "Before anyone could speak",
    "While the rain fell", "After the funeral", "Since the day of the fire", "Until the candles burned low",
    "Long before the coach arrived", "As soon as the door was shut", "Though nobody said so",
    "When the letter came at last", "Once the guests had gone", "As the clock struck the hour",
    "Even in those days", "Whenever the wind rose", "Just as the sun went down", "Because the road was flooded",
    "If the stories were true", "Now that the harvest was in", "Once upon a time", "By the time the tea was cold",
    "Not long after the wedding", "Before the snow had melted",
)
UTTERANCES = (
    "I do not think so", "You must come at once", "It is of no consequence", "We shall see", "Nobody asked you",
    "I have heard that story before", "Let us wait a little longer", "There is nothing more to be done",
    "How very strange", "I beg your pardon", "It was not my fault", "You are quite right",
    "The road will be impassable by morning", "Have you seen the new curate", "I never cared for the town",
    "Perhaps it is better this way", "Tell me everything", "It is too late for that", "What a dreadful night",
    "I shall not forget this", "Do sit down", "He was always a good man", "The price of bread has risen again",
    "She will not come", "Leave it where it is", "Whatever can you mean", "There is a letter for you",
    "I thought you had gone abroad", "We must not lose heart", "That is a matter for the magistrate",
)
SAID_VERBS = ("said", "replied", "whispered", "murmured", "answered", "cried", "muttered", "observed", "remarked",
              "declared", "admitted", "protested", "called out", "added")
ABSTRACTS = (
    "money", "gossip", "music", "politics", "the sea", "solitude", "ceremony", "idleness", "good fortune",
    "hard work", "poetry", "the city", "strangers", "long journeys", "sermons", "cards", "dancing", "the law",
    "flattery", "old quarrels", "the theatre", "hunting", "bad news", "promises",
)
FEELINGS = ("felt a sudden chill", "smiled in spite of everything", "grew quiet", "could not sleep",
            "resolved to say nothing", "felt oddly comforted", "wondered what might have been",
            "was ashamed of the thought", "laughed softly", "began to understand", "felt very tired",
            "decided to write at once")
MEMORIES = ("the old days", "a summer long past", "the house by the sea", "a promise made in youth",
            "a face in the crowd", "the winter of the great frost", "a letter never answered", "the last dance",
            "a voice from childhood", "the long road home")
SMELLS = ("woodsmoke", "wet leaves", "lavender", "salt and tar", "fresh bread", "old paper", "rain", "pipe tobacco",
          "roses", "candle wax", "hay", "the sea")
WEATHER = (
    "A thin rain had begun to fall", "The wind rose in the night", "Fog lay thick upon the water",
    "The sky was heavy with snow", "A pale sun broke through the clouds", "Thunder rolled somewhere far away",
    "The frost had silvered every branch", "It was a still, warm evening", "The storm had passed in the night",
    "A cold mist crept up from the river", "The stars came out above the chimneys", "Rain drummed on the roof",
)
WEATHER_SUBJECTS = ("A thin rain", "A cold wind", "The fog", "A pale mist", "The snow", "A grey drizzle", "The storm",
                    "A warm breeze", "A bitter wind", "The evening mist", "A sudden squall", "The smoke of many fires")
WEATHER_VERBS = ("drifted", "swept", "crept", "settled", "lingered", "gathered", "blew", "passed", "hung", "rolled")
WEATHER_PREPOSITIONS = ("over", "across", "above", "along")
LANDSCAPES = ("hills", "rooftops", "fields", "marshes", "valley", "moor", "village", "harbour", "woods", "river")
SHORT_SENTENCES = (
    "Nobody spoke.", "It was late.", "All was still.", "Somewhere a dog barked.", "The fire crackled.",
    "Time passed.", "Night fell.", "Nothing stirred.", "It rained.", "Silence.", "So it was.", "Indeed.",
    "Quite so.", "Not a soul answered.", "The clock ticked.", "Then all was quiet.", "Well.", "Ah.",
    "Nobody came.", "The hours crept by.", "It was over.",
)
NEWSPAPERS = ("The Gazette", "The Courier", "The Chronicle", "The Herald", "The Observer", "The Evening Post")
REPORTS = (
    "the bridge would be rebuilt before winter", "the squire had returned from abroad",
    "a ship had been lost off the point", "the price of corn had fallen", "the old mill was to be sold",
    "a new railway would pass through the valley", "the fair had drawn great crowds",
    "the magistrate had resigned", "the church roof was in want of repair", "strange lights had been seen over the bay",
)
