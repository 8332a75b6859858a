"""The words mail clients and people put around a reply, in the languages partners write in.

Only vocabulary lives here; ``extract`` owns the structure. The languages are those of the
UK (English, Welsh, Irish, Scottish Gaelic) and the EU's largest (German, French, Spanish,
Italian, Dutch, Polish, Portuguese, Romanian), plus Swedish where the clients we met used
it. The structural rules in ``extract`` catch attributions and header blocks in languages
missing here when the quote below them is our own notification; these lists are what lets
the bridge cut mail that quotes something else, and the signatures and disclaimers, whose
only structure is their wording.

Each list was written from the clients' own localisations (Gmail, Outlook, Apple Mail,
Thunderbird) and corporate mail as UK and EU public bodies send it.
"""

from __future__ import annotations


def _words(*alternatives: str) -> str:
    """One regex alternation; spaces inside a phrase match any run of white space."""
    return "|".join(a.replace(" ", r"\s+") for a in sorted(alternatives, key=len, reverse=True))


# The verb of an attribution line ("On <date>, <name> wrote:") in each language.
WROTE = _words(
    "wrote",
    "schrieb",
    "a écrit",
    "escribió",
    "ha scritto",
    "schreef",
    "escreveu",
    "skrev",
    "napisał\\(a\\)",
    "napisała",
    "napisał",
    "pisze",
    "napsal",
    "ysgrifennodd",
    "scríobh",
    "sgrìobh",
    "a scris",
    "kirjoitti",
)

# First words of the line that introduces an Outlook-style header block ("From: …").
FROM_LABELS = _words(
    "from", "von", "de", "da", "van", "od", "från", "fra", "oddi wrth", "ó", "bho", "de la"
)

# The labels that follow it ("Sent:", "To:", "Subject:" …).
HEADER_LABELS = _words(
    # English
    "sent", "date", "to", "subject", "cc",
    # Welsh, Irish, Scottish Gaelic
    "anfonwyd", "dyddiad", "at", "pwnc", "seolta", "dáta", "chuig", "ábhar", "air a chur",
    "gu", "cuspair",
    # German, French, Spanish, Italian
    "gesendet", "datum", "an", "betreff", "envoyé", "à", "objet", "enviado el", "enviado",
    "fecha", "para", "asunto", "inviato", "data", "a", "oggetto",
    # Dutch, Polish, Portuguese, Romanian, Swedish
    "verzonden", "aan", "onderwerp", "wysłano", "do", "temat", "enviada", "assunto",
    "trimis", "către", "catre", "subiect", "skickat", "till", "ämne",
)  # fmt: skip

# "-----Original Message-----" and the forwarded-message separators, in each language.
SEPARATOR_NAMES = _words(
    "original message",
    "forwarded message",
    "ursprüngliche nachricht",
    "weitergeleitete nachricht",
    "message d'origine",
    "message d\u2019origine",
    "message transféré",
    "mensaje original",
    "mensaje reenviado",
    "messaggio originale",
    "messaggio inoltrato",
    "oorspronkelijk bericht",
    "doorgestuurd bericht",
    "oryginalna wiadomość",
    "wiadomość przekazana dalej",
    "mensagem original",
    "mensagem encaminhada",
    "mesaj original",
    "mesaj redirecționat",
    "neges wreiddiol",
    "neges wedi'i hanfon ymlaen",
    "bunteachtaireacht",
    "teachtaireacht bhunaidh",
    "teachdaireachd thùsail",
    "ursprungligt meddelande",
)

# The first line of a mobile or web client's footer ("Sent from my iPhone").
SENT_FROM = _words(
    "sent from my",
    "sent from outlook",
    "sent from mail for",
    "sent from yahoo mail",
    "sent from proton mail",
    "sent from protonmail",
    "sent from samsung",
    "sent with proton mail",
    "get outlook for",
    "von meinem",
    "gesendet von meinem",
    "gesendet von",
    "envoyé de mon",
    "envoyé depuis mon",
    "envoyé de",
    "enviado desde mi",
    "enviado desde",
    "inviato da",
    "verzonden vanaf mijn",
    "verstuurd vanaf mijn",
    "verzonden met",
    "wysłane z",
    "wysłano z",
    "enviado do meu",
    "enviado do",
    "enviado a partir do",
    "trimis de pe",
    "trimis din",
    "anfonwyd o fy",
    "anfonwyd o'm",
    "seolta ó mo",
    "seolta ó",
    "air a chur bho",
    "air a chur o m'",
    "air a chur o m\u2019",
    "air a chur o",
    "skickat från min",
)

# Closing words a signature starts with; "A / B" bilingual forms are read by ``extract``.
VALEDICTIONS = _words(
    # English
    "regards", "kind regards", "best regards", "warm regards", "warmest regards",
    "many thanks", "thanks", "thank you", "thanks again", "with thanks", "best",
    "best wishes", "kind wishes", "cheers", "yours sincerely", "yours faithfully",
    "sincerely", "all the best", "speak soon", "ta",
    # Welsh
    "cofion", "cofion cynnes", "cofion gorau", "diolch", "diolch yn fawr", "yn gywir",
    "yn ddiffuant", "gyda diolch", "hwyl", "hwyl fawr",
    # Irish and Scottish Gaelic
    "le meas", "le dea-mhéin", "go raibh maith agat", "go raibh maith agaibh",
    "míle buíochas", "beannachtaí", "le dùrachd", "le deagh dhùrachd", "tapadh leibh",
    "tapadh leat", "mòran taing",
    # German
    "mit freundlichen grüßen", "mit freundlichen grüssen", "freundliche grüße",
    "freundliche grüsse", "viele grüße", "viele grüsse", "beste grüße", "liebe grüße",
    "herzliche grüße", "schöne grüße", "gruß", "grüße", "mfg", "danke", "vielen dank",
    # French
    "cordialement", "bien cordialement", "bien à vous", "salutations",
    "sincères salutations", "meilleures salutations", "merci", "merci beaucoup",
    "amicalement", "respectueusement", "bonne journée",
    # Spanish
    "saludos", "un saludo", "saludos cordiales", "un cordial saludo", "atentamente",
    "gracias", "muchas gracias", "un abrazo",
    # Italian
    "cordiali saluti", "distinti saluti", "saluti", "un saluto", "grazie", "grazie mille",
    "cordialmente",
    # Dutch
    "met vriendelijke groet", "met vriendelijke groeten", "vriendelijke groet",
    "vriendelijke groeten", "hartelijke groet", "hartelijke groeten", "groet", "groeten",
    "mvg", "bedankt", "dank je wel", "dank u wel",
    # Polish
    "pozdrawiam", "serdecznie pozdrawiam", "pozdrowienia", "z poważaniem",
    "z wyrazami szacunku", "dziękuję", "dzięki",
    # Portuguese
    "cumprimentos", "com os melhores cumprimentos", "melhores cumprimentos",
    "atenciosamente", "obrigado", "obrigada", "abraço", "abraços", "saudações",
    # Romanian
    "cu stimă", "cu stima", "cu respect", "cu bine", "mulțumesc", "mulţumesc",
    "multumesc", "toate cele bune", "o zi bună",
    # Swedish
    "med vänlig hälsning", "vänliga hälsningar", "hälsningar",
)  # fmt: skip

# Wording of legal notices. A paragraph is a notice when it opens as one
# (DISCLAIMER_OPENINGS), or carries a cue found almost only in notices (DISCLAIMER_STRONG:
# received in error, tell the sender, delete it …) and one more cue of either list, or is
# long and carries two cues. A partner may well write "confidential" or "recipient"; they
# rarely tell the reader to delete their mail. Welsh words are matched with their
# mutations ("gyfrinachol", "gamgymeriad").
DISCLAIMER_CUES = (
    # English
    r"\bconfidential",
    r"\bprivileged\b",
    r"\bintended\s+recipient",
    r"\brecipient",
    r"\bintended\s+(?:solely|only|exclusively)\b",
    r"\bvirus(?:es)?\b",
    r"\bfreedom\s+of\s+information\b",
    r"\blegally\b",
    r"\bdisclos(?:e|ure)\b",
    # Welsh, Irish, Scottish Gaelic
    r"\b[cg]yfrinachol",
    r"\b(?:d|dd|n|nh)?(?:d|dd)?erbynnydd",
    r"\bbwriadu\b",
    r"\brhyddid\s+gwybodaeth",
    r"\bfaoi\s+rún",
    r"\brúnda\b",
    r"\bseolaí\b",
    r"\bdìomhair",
    # German, French, Spanish, Italian
    r"\bvertraulich",
    r"\bempfänger",
    r"\badressat",
    r"\bconfidentiel",
    r"\bdestinataire",
    r"\bconfidencial",
    r"\bdestinatari[oa]",
    r"\briservat[oaie]",
    # Dutch, Polish, Portuguese, Romanian
    r"\bvertrouwelijk",
    r"\bgeadresseerde",
    r"\buitsluitend\s+bestemd",
    r"\bpoufn",
    r"\badresat",
    r"\bdestinatário",
    r"\bconfiden[țţt]ial",
    r"\bdestinatar",
)
DISCLAIMER_STRONG = (
    # English
    r"\breceived\s+(?:it|this(?:\s+(?:e-?mail|message|communication))?)\s+(?:in\s+error|by\s+mistake)",
    r"\bif\s+you\s+(?:are\s+not\s+the|have\s+received)",
    r"\bnotify\s+(?:the\s+sender|us)\b",
    r"\bdelete\s+(?:it|this|the\s+(?:e-?mail|message)|all\s+copies)\b",
    r"\baddressee",
    r"\bmay\s+be\s+(?:monitored|recorded)",
    r"\bviews\s+(?:or\s+opinions\s+)?expressed\b",
    r"\bunauthori[sz]ed\s+(?:use|disclosure|copying|distribution|review)",
    # Welsh, Irish, Scottish Gaelic
    r"\b(?:trwy|mewn)\s+(?:g|c|ch|ngh)amgymeriad",
    r"\banfonwr\b",
    r"\bdileu\b",
    r"\btrí\s+earráid",
    r"\bseoltóir",
    r"\bscrios\s+é\b",
    r"\ble\s+mearachd",
    r"\bsguab\s+às",
    # German
    r"\birrtümlich",
    r"\babsender",
    r"\b(?:vernichten|löschen)\s+sie\b",
    r"\b(?:unbefugte|unerlaubte)",
    # French, Spanish, Italian
    r"\bpar\s+erreur",
    r"\bexpéditeur",
    r"\bpor\s+error",
    r"\bremitente",
    r"\bper\s+errore",
    r"\bmittente",
    # Dutch, Polish, Portuguese, Romanian
    r"\b(?:abusievelijk|per\s+vergissing|onterecht)",
    r"\bafzender",
    r"\b(?:omyłkowo|przez\s+pomyłkę|błędnie)",
    r"\bnadawc",
    r"\bpor\s+(?:engano|erro)\b",
    r"\bremetente",
    r"\bdin\s+(?:gre[șş]eal[ăa]|eroare)",
    r"\bexpeditor",
)
DISCLAIMER_OPENINGS = (
    r"^\W*(?:disclaimer|confidentiality\s+(?:notice|statement|note)|legal\s+notice|"
    r"important\s+notice|ymwadiad|hysbysiad\s+cyfrinachedd|haftungsausschluss|"
    r"avertissement|aviso\s+legal|avviso\s+di\s+riservatezza|clausola\s+di\s+riservatezza|"
    r"vrijwaring|disclaimer|zastrze[żz]enie|aviso\s+de\s+confidencialidade|"
    r"notă\s+de\s+confiden[țţ]ialitate)\b"
)
