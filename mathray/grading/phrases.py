"""Finding the answer inside a phrase of prose: "The largest $n$ is 34", "So she earns \\$18",
"there are 6 ways", "$x = 5$ apples", "five".

A phrase is split into prose and math segments (``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``); a ``$`` whose
"math" would be prose (``costs $5 and gets $3``) or that has no partner on its line is a currency sign.
Math segments are then masked (``\\x00k\\x00``) so the rules below see them as single items:
- the phrase's leading item (math segment, number, or number in words), with a following ``or``/``and``/comma
  list of items kept whole, so a hedged "3 or 4" stays a list (and is then not equal to 3);
- else the leading item after the last linking word (is, are, =, equals, ...);
- else the only item in the phrase; several items give nothing (no guessing).
A reason clause ("since ...", "because ...") and a hypothetical one (", but if she doubled it she would need
18", ", though if it were wider it would be 120", ", whereas a taxi would cost 15") are set aside first;
"$\\frac14$, or 25%" is 1/4. An alternative left open after the answer ("probably 12, but it might be 13")
makes the answer the hedged list "12 or 13" (so does "40, or possibly 41", and a value for each of two
conditions, "15 if the host shakes hands too, or 10 if she does not"); markdown bold (``**6**``) is read as its
content. A mixed number in digits ("4 2/3", and "5 and 1/4" before the noun it measures, "5 and 1/4 cups") is one
item. A value restated as approximately a decimal ("$12\\pi$, which is approximately 37.70") ends in that
approximation, as a chain with ``\\approx`` does. A clock time or ratio ("3:45", "2:3") is one item. In a phrase
that states a base above ten, a token of capitals and digits ("2A in hexadecimal") is an item. A polynomial
equation in prose
("the plane is 2x - y + 3z + 14=0") and a phrase naming a set ("no real solutions", "all real numbers",
"infinitely many") that end the phrase are the answer as a whole, and so is a choice letter that ends it
after "option" or "choice" ("the correct option is C"), and so are relations of one variable joined by
or/and/commas that end it ("holds when $x < -1$ or $x > 4$"), and so is one such relation after "holds when" or
"is true exactly when" ("which is true exactly when $-2 < x < 6$"), and so is the condition in "all $x$ with
$-3 \\le x \\le 3$". Unmarked, a closing clause that names a result
("7*14 = 98, remainder 2") states it. Closing forms name their item first: a commitment after a hedge ("either
8 or 9; I'll go with 8"), a confirmation ("the area $25\\pi$ is right"), a count verb ("... number 39"), "only
(E) works", an interval or set restated after "i.e."/"that is". Relations joined by "and" whose last one is solved
("$2x = 16$ and $x = 8$") are steps of one solution: the solved one. A decimal restatement of a numeral in another
base (", which is 9 in decimal" after ``1001_2`` or after "in base 2 ... 1001") is set aside. Numbers in prose may
be in e-notation ("1.2e-3") or scientific notation ("1.2 × 10^5"). A parenthesised aside of plain words ("(a double
root)") is set aside. An amount in several units of one kind ("1 hour and 50 minutes", "5 ft 6 inches") is one item.
An amount restated in another unit of its kind (", or 1.5 hours" after "90 minutes", ", which is 54 km/h" after
"15 m/s", ", or 110 minutes" after "1 hour and 50 minutes") is set aside. "Gives the answer 4.5e-3" states 4.5e-3;
"exactly $\\frac23 \\approx 0.67$" states the exact value; a clock time that ends the phrase after "at"/"by"/"until"
("she arrives at 2:30 pm") states it; a clause that ends counting in a word ("so it happens twice") states the count
(not "at least once").
Number words include phrases ("one hundred twenty", "two thirds"); a count in words before a set phrase ("the
count is zero; there are no real roots") is the answer, not the set. A clause with no value that ends in a verdict
word ("the function is even", "the series converges", "the sequence is neither arithmetic nor geometric") states
that word, also after values when it concludes (", so the sequence is geometric"), and one that opens with a yes
or no ("No, it is not possible.") states that reply, also when its values only name what its claim is about ("No,
91 is not prime."). A phrase that ends naming a weekday or month ("..., which is a
Wednesday") states it; a closing total (", for 36 players in total") states the total; clock times in words are
read as ``H:MM``.

Callers collapse runs of spaces first; every scan here is one left-to-right pass or a regex without
ambiguous adjacent quantifiers, so a 200k-character phrase costs linear time.
"""
from __future__ import annotations

import itertools
import re

from mathray.grading.quantities import COMPOUND_AMOUNT, UNIT, quantities_verdict, quantity
from mathray.grading.words import NUMBER_PHRASE, SET_PHRASE, clock_times_in_digits

MAX_BARE_CHARS = 400  # a one-line prediction this short with (almost) no prose is its own answer

_CURRENCY = "€£¥₹"
# a comma inside a number groups three digits ("1,250"); "4, 7, 10" is a list
_NUMBER = (r"(?:\\\$|[$" + _CURRENCY + r"])? ?-?(?:(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)"
           r"(?:[eE][-+]?\d{1,4}(?![\w.]\w)| ?(?:×|\\times|\\cdot|\*) ?10 ?\^ ?(?:\{ ?[-+]?\d{1,4} ?\}|[-+]?\d{1,4}))?"
           r"(?:/\d+)?"
           r"(?: ?(?:\\?%|[" + _CURRENCY + r"]))?")
# a standalone number: not part of a product, power, sum or word ("3x+1", "2^5", "9 * 2" give none)
_GLUED_UNITS = r"(?:st|nd|rd|th|g|kg|kgs|mg|cm|mm|m|km|ml|l|lb|lbs|oz|ft|in|h|hr|hrs|min|mins|s|sec|secs|mph|kmh|mi)\b"
# a clock time or a ratio ("3:45", "2:3") is one item, never split at its colon
_COLON_NUMBER = r"(?<![\w.:])\d+(?::\d+)+(?![\w:]|\.\d)"
_LONE_NUMBER = (_COLON_NUMBER + r"|(?<![\w.\\^_{/*+×·-])(?<!\d:)" + _NUMBER + r"(?:(?=" + _GLUED_UNITS + r")"
                + r"|(?![A-Za-z\d^{(_]|\.\d| ?(?:[-+*/=^×·]|\\cdot|\\times|\\div|:\d) ?[\d(\\]))")
# a tuple of numbers written in prose, "(1, 3, 3, 8)", is one item
_TUPLE = r"(?<![\w)])\( ?-?\d+(?:\.\d+)?(?: ?, ?-?\d+(?:\.\d+)?){1,15} ?\)(?![\w(])"
# a mixed number in digits, "4 2/3", is one amount (a whole number, a space, a fraction)
_MIXED_NUMBER = r"(?<![\w.,/\\^_{$-])\d{1,9} \d{1,9}/\d{1,9}(?![\w/]|\.\d)"
_ITEM = r"\x00\d+\x00|" + _TUPLE + r"|" + _MIXED_NUMBER + r"|\b" + NUMBER_PHRASE + r"|" + _LONE_NUMBER
_JOIN = r" ?(?:, ?(?:and |or )?|and |or |\\text\{ ?(?:and|or) ?\} ?)"
# each filler word, with its comma and space, reads one way, so a run of them ("so so so ...") that no item follows
# fails in linear time
_FILLER = (r"(?:only|exactly|just|then|therefore|thus|hence|so|now|also|simply|equal to|given by|at|us"
           r"|the (?:final )?(?:answer|result))(?: ?,)? ?")  # "gives the answer 4.5e-3"
_LEADING = re.compile(r" ?[:\-]? ?(?:%s)*((?:%s)(?:%s(?:%s))*)" % (_FILLER, _ITEM, _JOIN, _ITEM), re.IGNORECASE)
_PERCENT_RESTATEMENT = re.compile(r",? ?(?:or|i\.e\.,?) (?:\\\$)?-?[\d.,]+ ?\\?%$")
# items without number words ("this one out")
_MATH_OR_NUMBER = re.compile(r"\x00\d+\x00|" + _TUPLE + "|" + _MIXED_NUMBER + "|" + _LONE_NUMBER)
# words after which a sentence states its result ("is", "=", "so", "which gives", "yielding", "a total of")
_LINK = re.compile(r"(?<![A-Za-z])(?:(?:is|are) (?:written|expressed|represented)(?: as)?"
                   r"|is|are|was|were|be|becomes|equals|totals|so|thus|hence|therefore|gives?|giving"
                   r"|yields?|yielding|implies|get|gets|got|obtain|has|have|had|earns|earned|makes|made|spends|spent"
                   r"|needs|pays|paid|saves|saved|costs|sells|sold|buys|bought|owes|receives|received|then|find"
                   r"|(?:follows|conclude|find|see|means) that|(?:a (?:grand )?)?total of|\\approx)(?![A-Za-z])"
                   r"|=|(?<!\d):|:(?!\d)", re.IGNORECASE)  # a colon between digits ("3:45") links nothing
_CONCLUSIONS = {"so", "thus", "hence", "therefore"}
_FRAME = re.compile(r" ?(?:in|after|within|over) (?:%s) [a-z]+,? " % _MATH_OR_NUMBER.pattern)
_COPULAS = {"is", "are", "was", "were", "=", "equals"}
_FRONTED_REASON = re.compile(r"(?:since|because|as) [^,$]{0,200}(?:\$[^$]{0,200}\$[^,$]{0,200}){0,4}, ", re.IGNORECASE)
_REASON = re.compile(r",? (?:since|because|where|as long as)\b", re.IGNORECASE)
_CLAUSE_END = re.compile(r",? (?:which|since|because|so that|where)\b|, (?:so|and so|therefore|thus|hence|i\.e\.)\b"
                         r"|(?<= )(?:since|because) ", re.IGNORECASE)
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")
# a clause that only says what would have happened: a conditional (", but if she doubled it she would need 18
# cups", ", though if it were wider it would be 120", "; had she waited, she would pay 20"), a contrast (",
# whereas with 5 friends each would pay 14") or, after a semicolon or dash, other conditions ("; with a third
# pipe it would fill in 4") whose verb is would/could/might
_WOULD = r"\b(?:would|could|might)\b|\w'd\b"
_HYPOTHETICAL_CLAUSE = re.compile(
    r"(?:[,;]| ?(?:—|–|--)) (?:(?:and|but|whereas|though|although|even though|yet|while) )?"
    r"(?:(?:if|had|were|assuming|supposing)\b(?=[^.;]*(?:%s))|(?:but|whereas|though|although)\b(?=[^.;]*(?:%s)))"
    r"|(?:;| ?(?:—|–|--)) (?:with|without|at|using|under)\b(?=[^.;]*(?:%s))"
    % (_WOULD, _WOULD, _WOULD), re.IGNORECASE)
_SET_PHRASE = re.compile(SET_PHRASE, re.IGNORECASE)
# a polynomial equation written in prose, "2x - y + 3z + 14=0": the whole equation, not its right side
_TERM = r"(?:\d+(?:\.\d+)? ?)?[a-z](?:\^\d+)?|\d+(?:\.\d+)?"
_PROSE_EQUATION = re.compile(r"(?<![\w^.])(-? ?(?:%s)(?: ?[-+] ?(?:%s))+ ?= ?0)(?![\w.])[ .]*$" % (_TERM, _TERM))
# a phrase that ends naming a choice letter in prose: "the correct option is C", "is choice (C)"
_NAMED_CHOICE = re.compile(r"\b(?:option|choice)(?: is| would be)? (\(?[A-J]\)?) ?[.!]? ?$")
_COMMAND = re.compile(r"\\[A-Za-z]+(?:\{[^{}]*\})?")
# a sentence that ends in a verdict word states it: "the function is even", "the number is composite", "the series
# converges"
_VERDICT = re.compile(r"\b(?:(?:is|are) (?:(?:an?|the) )?(odd|even|neither(?: even nor odd| odd nor even)?|prime"
                      r"|composite|rational|irrational|true|false|convergent|divergent|bounded|unbounded|arithmetic"
                      r"|geometric|increasing|decreasing|periodic|circle|ellipse|parabola|hyperbola)|(converges|diverges)"
                      r"|(?:is|are) (neither|both) [a-z-]+ (?:nor|and) [a-z-]+) ?[.!]? ?$", re.IGNORECASE)
# a concluding clause that ends in a verdict ("..., so the sequence is neither arithmetic nor geometric") states it
# even when earlier clauses state values
_CONCLUDED_VERDICT = re.compile(r"(?:^|[,;] ?)(?:and )?(?:so|thus|hence|therefore)\b[^,;]*$", re.IGNORECASE)
# a phrase that ends naming a day of the week or a month ("..., which is a Wednesday", "it falls on a Friday")
_CALENDAR = re.compile(r"\b(?:is|was|be|falls on|lands on|fell on|landed on)(?: on)?(?: an?)? (Monday|Tuesday|Wednesday"
                       r"|Thursday|Friday|Saturday|Sunday|January|February|March|April|May|June|July|August|September"
                       r"|October|November|December) ?[.!]? ?$")
# a clause without a value that opens with a yes or no ("No, it is not possible.", "Yes — every such graph is
# planar.") states that reply, and so does one whose values name what the reply is about (``_reply``)
_YES_NO = re.compile(r" ?(yes|no)(?:,| ?[.!;:—–]| -)(?= |$)", re.IGNORECASE)
# the verb of the claim after a yes or no ("No, 91 is not prime", "Yes, $x = 2$ does satisfy it")
_CLAIM_VERB = re.compile(r"\b(?:(?:is|are|was|were|does|do|did|has|have|had|could|would|should)(?:n't| not)?"
                         r"|can(?:'t|not)?|won't|will(?: not)?|must(?: not)?)\b", re.IGNORECASE)
_REPLY_LINKS = 3  # the linking words after the reply that are checked for a value right after them
# an alternative value the phrase leaves open after its answer ("12, but it might be 13"): the answer is hedged
_ALTERNATIVE = re.compile(r",? (?:(?:but|though|although|or) (?:it|that|this|the answer) (?:might|could|may)"
                          r" (?:also |instead |well |actually )?be|or (?:possibly|perhaps|maybe)) (?=\$|\\\(|-?\d)",
                          re.IGNORECASE)
# a value given under a condition and another under the opposite one ("15 if the host shakes hands too, or 10 if
# she does not", "9 if the last page counts; otherwise 8") leaves the answer open: it is hedged; the second value
# carries a condition of its own unless "otherwise"/"else" introduces it
_CONDITIONAL_ALTERNATIVE = re.compile(
    r"(?<=[\w$)%]) (?:if|when|unless)\b[^.;:]{1,200}?(?:[,;]| ?(?:—|–|--))? (?:(or|and|but|while|whereas)"
    r"|(otherwise|else)),?(?: (?:it(?:'s| is| would be| will be)|the answer is|we get|there are|there would be))?"
    r" (?=\$|\\\(|-?\d)", re.IGNORECASE)
_OWN_CONDITION = re.compile(r"\b(?:if|when|unless|otherwise)\b", re.IGNORECASE)
_VALUE_BEFORE_CONDITION = re.compile(r"(?:\d|\$|\\\)|%)(?: [A-Za-z]+){0,2}$")
# a whole number "and" a proper fraction in digits before the noun it measures ("5 and 1/4 cups", "2 and 1/2
# hours") is a mixed number; without such a noun ("the roots are 2 and 1/2") or as a range ("between 2 and 3/4")
# it is two values
_MIXED_WITH_AND = re.compile(r"(?<![\w.,/])(?<!between )(\d{1,9}) and (\d{1,9})/(\d{1,9})"
                             r"(?= (?:%s)\b| (?!(?:is|was|has|does|as|this|thus|plus|minus|yes|its|us|his|less"
                             r"|unless|whereas|perhaps|gives|makes|satisfies|works|yields|equals|means|holds)\b)"
                             r"[a-z]{2,}s\b)" % UNIT)
# an exact value restated as approximately a decimal ("$12\\pi$, which is approximately 37.70 cubic
# inches", "1/3, or roughly 0.33") ends in the approximation, as the chain ``12\\pi \\approx 37.70`` does;
# a comparison ("or about 5 more than ...") or a percent after the decimal is no such restatement
_APPROXIMATE_RESTATEMENT = re.compile(
    r"(?:\$([^$]{1,300})\$|(?<![\w.$])(-?\d+(?:\.\d+)?(?:/\d+)?)),? (?:which is|that is,?|i\.e\.,?|or)"
    r" (?:about|approximately|roughly|around|nearly|≈|\$\\approx\$) \$?(-?\d+(?:\.\d+)?)\$?"
    r"(?=(?: (?!(?:more|less|fewer|than|times|percent)\b)[A-Za-z]+){0,3} ?[.!,;)]? ?$)")
_BOLD = re.compile(r"\*\*([^*\n]{1,200}?)\*\*")
# a parenthesised aside of plain lowercase words ("$x = 3$ (a double root) and $x = -1$"), not a roman numeral
_ASIDE = re.compile(r"(?<![{\w]) ?\((?![ivxl]+\))(?=[a-z ]*[a-z]{2})[a-z][a-z ,'-]{0,60}\)")
# a closing clause that names a result: "7*14 = 98, remainder 2", "340 + 51 = 391, total 391"
_NAMED_RESULT = re.compile(r", ?(?:so |hence |thus |the )?(?:remainder|total|sum|product|difference|quotient|result"
                           r"|answer)(?: is| =|:)? ?(%s) ?[.!]? ?$" % _MATH_OR_NUMBER.pattern, re.IGNORECASE)
_RELATION_ITEM = re.compile(r"\\(?:le|ge|leq|geq|ne|neq)\b|[<>=]")
# "the domain is all $x$ with $-3 \\le x \\le 3$": the condition on the variable is the answer
_ALL_SUCH = re.compile(r"\ball (?:real (?:numbers? )?)?\x00(\d+)\x00 "
                       r"(?:with|such that|satisfying|for which|that satisfy)"
                       r" \x00(\d+)\x00 ?[.!]? ?$")
# closing forms that name the answer: a commitment after a hedge ("either 8 or 9; I'll go with 8", "I'll go with
# (C)"), a confirmation ("the area $25\\pi$ is right"), a count verb ("the integers between 10 and 50 number 39"), a
# letter that alone passes the check ("only (E) works")
_COMMITTED = re.compile(r"\b(?:I'll|I will|I'd|we'll|we will|let's|let us) (?:go with|choose|pick|settle on|take)"
                        r" (?:option |choice |answer )?(%s|(?-i:\([A-J]\)|[A-J](?![\w']))) ?[.!]? ?$" % _ITEM,
                        re.IGNORECASE)
_CONFIRMED = re.compile(r"(?<![\w\x00])(%s) (?:is|was) (?:indeed |still |then )?(?:right|correct|confirmed)\b ?[.!]? ?$"
                        % _MATH_OR_NUMBER.pattern, re.IGNORECASE)
_COUNT_VERB = re.compile(r"(?<![A-Za-z])(?<!real )(?<!the )(?<!a )(?:number|total|totals|come to|comes to|amount to"
                         r"|amounts to|add up to|adds up to) (%s) ?[.!]? ?$" % _LONE_NUMBER, re.IGNORECASE)
# a closing clause that totals ("..., for 36 players in total", "..., making 40 in all"): the total is the answer
_FOR_TOTAL = re.compile(r", (?:for|making|giving|so|or) (?:a total of )?(%s)(?: [a-z]+){0,3}"
                        r" (?:in total|in all|altogether|total) ?[.!]? ?$" % _ITEM, re.IGNORECASE)
_ONLY_LETTER = re.compile(r"\bonly (\([A-J]\)) (?:works|holds|fits|satisfies\b[^.]{0,80}|is (?:correct|right|true|valid))"
                          r" ?[.!]? ?$")
# an interval or set restated after "i.e."/"that is"/"namely" at the end of the phrase ("all real numbers greater
# than or equal to 1, i.e. $[1, \\infty)$"): the notation is the answer
_RESTATED = re.compile(r"[,;]? ?(?:i\.e\.|that is|namely|in other words|equivalently),? (\x00\d+\x00) ?[.!]? ?$")
_SET_NOTATION = re.compile(r"\\infty|\\cup|\\cap|^ ?(?:\\left)?(?:[\[(]|\\\{)[^,]*,")
# a decimal restatement of a numeral written in another base (", which is 9 in decimal") is set aside: the
# numeral is the stated answer
_BASE_RESTATEMENT = re.compile(r", (?:which is|i\.e\.|or) [^.,;]{1,40}\bin (?:decimal|base[- ]?(?:10|ten))\b",
                               re.IGNORECASE)
_BASED_NUMERAL = re.compile(r"_\{?\d{1,2}\}?|\bin base[- ]?(?!10\b)\d{1,2}\b|\b(?:binary|octal|hexadecimal)\b",
                            re.IGNORECASE)
# an amount restated in another unit of its kind (", or 1.5 hours" after "90 minutes", ", which is 54 km/h" after
# "15 m/s", ", or about 34 mph") is set aside: the first amount is the stated answer; a second amount that is
# neither the same amount nor marked as approximate is an alternative, not a restatement; either amount may be in
# several units ("1 hour and 50 minutes, or 110 minutes")
_MORE_UNITS = r"(?: (?:and )?\d{1,9}(?:\.\d{1,9})? ?%s(?![\w/])){0,3}" % UNIT
_UNIT_RESTATEMENT = re.compile(r"(?<![\w.,])(\d[\d.,/]* ?(%s)%s)\$?(, ?(?:or|i\.e\.,?|that is,?|which is)"
                               r"( about| approximately| roughly)? \$?(-?\d[\d.,/]* ?\$? ?(%s)%s))(?![\w/])"
                               % (UNIT, _MORE_UNITS, UNIT, _MORE_UNITS), re.IGNORECASE)
# a clock time that ends the phrase after "at"/"by"/"until" ("she arrives at 2:30 pm") is the time it states
_ENDING_TIME = re.compile(r"\b(?:at|by|until|till) (\d{1,2}:\d{2})(?: ?(?:a\.m\.?|p\.m\.?|am|pm))?(?![\w:])"
                          r" ?[.!]? ?$", re.IGNORECASE)
# a clause that ends counting occurrences in a word ("so it happens twice", "the graphs meet once") states the count;
# a bound ("at least once", "more than twice") or "at once" (at the same time) states none
_COUNT_ADVERB = re.compile(r"(?<!\bleast )(?<!\bmost )(?<!\bthan )(?<!\bat )(?<!\bor )\b(once|twice|thrice)"
                           r" ?[.!]? ?$", re.IGNORECASE)
_ADVERB_COUNTS = {"once": "1", "twice": "2", "thrice": "3"}
# "exactly $\\frac23 \\approx 0.67$": the writer commits to the exact value; the approximation after it is a gloss
_EXACTLY = re.compile(r"\bexactly (?:equal to )?\x00(\d+)\x00")
_APPROX = re.compile(r"\\approx|≈")
_TRAILING_ITEMS = re.compile(r"(\x00\d+\x00(?:%s\x00\d+\x00)+) ?[.!]? ?$" % _JOIN)
# one relation that ends the phrase as the condition under which something holds ("which is true exactly when
# $-2 < x < 6$", "holds for $x \\ge 3$")
_HOLDS_WHEN = re.compile(r"\b(?:holds?|(?:is|are) (?:true|satisfied|valid))(?: (?:exactly|precisely|only|just))?"
                         r" (?:when|whenever|if|iff|if and only if|for)(?: (?:exactly|precisely|only))?"
                         r" (\x00\d+\x00) ?[.!]? ?$", re.IGNORECASE)
_SOLVED = re.compile(r" ?[A-Za-z] ?= ?[^A-Za-z=<>]+")  # x = 8, x = -\\frac{3}{2}: the variable alone on the left
_SINGLE_VARIABLE = re.compile(r"(?<![\\A-Za-z])[A-Za-z](?![A-Za-z])")
_CONNECTORS = {"or", "and"}
_MATH_CHAR = re.compile(r"[\d\x00\x01\\^_{}()\[\]=+*/<>|&$%]|(?<![A-Za-z])-|-(?![A-Za-z])")
_VERBS = {"is", "are", "was", "were", "be", "equals", "get", "gets", "makes", "has", "have"}


def _unescaped(text: str, i: int) -> bool:
    k = i
    while k > 0 and text[k - 1] == "\\":
        k -= 1
    return (i - k) % 2 == 0


def _prose_like(math: str) -> bool:
    """Whether the text between two ``$`` reads as prose (two lowercase words of 3+ letters in a row, as in
    ``costs $5 and then $3``); math has single letters or names like ``AD \\cdot CD``."""
    words = re.findall(r"[A-Za-z]+|\S", _COMMAND.sub(" ", math))
    return any(re.fullmatch("[a-z]{3,}", a) and re.fullmatch("[a-z]{3,}", b) for a, b in zip(words, words[1:]))


_DIGIT_AFTER = re.compile(r"-?\d")  # "$90 - $180 = $-90": a "$" before a number opens nothing
_DISPLAY_ENV = re.compile(r"\\begin\{(align\*?|equation\*?|gather\*?|eqnarray\*?|multline\*?|displaymath)\}")


def segments(text: str) -> list[tuple[str, str]]:
    """``text`` as ("prose", s) and ("math", s) pieces in order."""
    out: list[tuple[str, str]] = []
    absent: set[str] = set()  # closers known not to occur again: keeps unpaired openers linear
    i = start = 0
    n = len(text)
    while i < n:
        c = text[i]
        closer = None
        width = 2
        if c == "$" and _unescaped(text, i):
            closer = "$$" if text.startswith("$$", i) else "$"
            width = len(closer)
        elif c == "\\" and i + 1 < n and text[i + 1] in "([" and _unescaped(text, i):
            closer = "\\)" if text[i + 1] == "(" else "\\]"
        elif c == "\\" and text.startswith("\\begin{", i) and (env := _DISPLAY_ENV.match(text, i)):
            closer, width = "\\end{%s}" % env.group(1), env.end() - i
        if closer is None or closer in absent:
            i += 1
            continue
        j = text.find(closer, i + width)
        while j > 0 and not _unescaped(text, j):
            j = text.find(closer, j + 1)
        if j < 0:
            absent.add(closer)
            i += 1
            continue
        if closer == "$" and (text.startswith("$$", j) or _DIGIT_AFTER.match(text, j + 1) or "\n" in text[i:j]
                              or _prose_like(text[i + 1 : j])):
            i += 1  # a currency sign, not a math delimiter ("$800*4 = $3200", "costs $5 and then $3")
            continue
        if i > start:
            out.append(("prose", text[start:i]))
        out.append(("math", text[i + width : j]))
        i = start = j + len(closer)
    if start < n:
        out.append(("prose", text[start:]))
    return out


def _mask(text: str) -> tuple[str, list[str]]:
    maths, parts = [], []
    for kind, s in segments(text):
        if kind == "math":
            parts.append(f"\x00{len(maths)}\x00")
            maths.append(s.strip())
        else:
            parts.append(s.replace("\x00", ""))
    return "".join(parts), maths


# in a phrase that states a base above ten, "2A" or "FF" is a number in that base ("we get 2A in hexadecimal")
_BASE_ABOVE_TEN = re.compile(r"\bbase[- ]?(?:1[1-9]|2\d|3[0-6])\b|\bhexadecimal\b", re.IGNORECASE)
_LETTER_DIGITS = re.compile(r"(?<![\w\\\x00])(?=[0-9A-Z]*[A-Z])[0-9A-Z]{2,64}(?![\w\x00])")


def _mask_letter_digits(masked: str, maths: list[str]) -> str:
    """Tokens of capitals and digits masked as math items when the phrase states a base above ten."""
    if not _BASE_ABOVE_TEN.search(masked):
        return masked

    def item(m: re.Match) -> str:
        maths.append(m.group(0))
        return f"\x00{len(maths) - 1}\x00"

    return _LETTER_DIGITS.sub(item, masked)


# an amount in several units of one kind ("1 hour and 50 minutes", "5 ft 6 inches")
_AMOUNT_IN_UNITS = re.compile(r"(?<![\w.,/\\^_{$-])" + COMPOUND_AMOUNT)


def _mask_amounts_in_units(masked: str, maths: list[str]) -> str:
    """Amounts in several units of one kind, largest unit first ("1 hour and 50 minutes"), masked as math items, so
    that each is one item; a list in one unit ("3 cm and 4 cm") stays two items."""
    def item(m: re.Match) -> str:
        if quantity(m.group(0)) is None:
            return m.group(0)
        maths.append(m.group(0))
        return f"\x00{len(maths) - 1}\x00"

    return _AMOUNT_IN_UNITS.sub(item, masked)


def _unmask(s: str, maths: list[str]) -> str:
    return re.sub(r"\x00(\d+)\x00", lambda m: maths[int(m.group(1))], s).strip()


def prose_words(text: str) -> list[str]:
    """Plain words (two letters or more) outside math and outside ``\\text{}``-like commands."""
    masked, _ = _mask(text)
    return _WORD.findall(_COMMAND.sub(" ", masked))


def is_bare(text: str, *, allow_text: bool = True) -> bool:
    """A short one-line answer, as opposed to a sentence: math or numbers with at most three plain words,
    all after them (units, "or"/"and" joins aside): ``-5``, ``$29.00``, ``5 apples``, ``18 per day``,
    ``x = 2 \\text{ or } x = 3``; or, with ``allow_text``, up to three words without digits or math
    (``Evelyn``, ``No solution``)."""
    t = text.strip()
    if not t or len(t) > MAX_BARE_CHARS or "\n" in t:
        return False
    masked = _COMMAND.sub(" \x01 ", _mask(t)[0])  # math segments and commands count as math
    words = [m for m in _WORD.finditer(masked) if m.group(0).lower() not in _CONNECTORS]
    if len(words) > 3 or _VERBS.intersection(w.group(0).lower() for w in words):
        return False
    math = [m.start() for m in _MATH_CHAR.finditer(masked)]
    if math:
        return not words or words[0].start() > math[-1]
    return allow_text and bool(re.search(r"[A-Za-z]", masked))  # "Evelyn", "No solution", "D"


def _leading(masked: str, maths: list[str]) -> str | None:
    m = _LEADING.match(masked)
    if not m or not m.group(1).strip():
        return None
    lead = _unmask(m.group(1), maths)
    restated = _PERCENT_RESTATEMENT.search(lead)
    if restated and restated.start() > 0:  # "$\\frac{1}{4}$, or 25%": the percent restates the value
        lead = lead[: restated.start()]
    return lead.strip() or None


_TAIL_CHARS = 200


_VARIABLE = re.compile(r"[A-Za-z](?:_\{?\w{1,3}\}?)?")


def _stated_whole(masked: str, maths: list[str]) -> str | None:
    """A prose equation ("the plane is 2x - y + 3z + 14=0") that ends the phrase, or a set phrase ("has no real
    solutions", "for all real numbers") that ends a phrase whose only numbers or math are variables or unsolved
    equations ("$x$ can be any real number", "the equation $x^2 + 1 = 0$ has no real roots"; "there are $4$
    values of k such that ... has no solutions" states 4), as a whole."""
    eq = _PROSE_EQUATION.search(masked)
    if eq and re.search(r"[a-z]", eq.group(1)):
        return eq.group(1)
    phrase = _SET_PHRASE.search(masked)
    if phrase and _names_no_value(masked, maths) \
            and not _counts_in_words(masked[: phrase.start()]):
        return phrase.group(0).rstrip(" .!")
    return None


def _counts_in_words(prose: str) -> bool:
    """Whether the prose names a number in words ("the count is zero; ..."), not a lone "one" or an "a" fraction."""
    return any(w.lower() != "one" and not w.lower().startswith(("a ", "the ")) for w in _NUMBER_PHRASE.findall(prose))


def _names_no_value(clause: str, maths: list[str]) -> bool:
    """Whether the clause's only math items are variables or unsolved equations, which name what its claim is
    about ("so $f$ is odd", "the graph of $x^2 + y^2 = 4$ is a circle")."""
    return all(_is_variable(item, maths) or _is_unsolved_equation(item, maths)
               for item in _MATH_OR_NUMBER.findall(clause))


def _is_variable(item: str, maths: list[str]) -> bool:
    return item.startswith("\x00") and bool(_VARIABLE.fullmatch(maths[int(item.strip("\x00"))]))


def _is_unsolved_equation(item: str, maths: list[str]) -> bool:
    """Whether the item is an equation that does not give a variable its value (``x^2 + y^2 = 4``, not
    ``x = 4``): the subject of a claim about it, not a stated value."""
    if not item.startswith("\x00"):
        return False
    math = maths[int(item.strip("\x00"))]
    return math.count("=") == 1 and bool(re.search(r"[A-Za-z]", math.split("=")[0])) \
        and not _SOLVED.fullmatch(math)


_NUMBER_PHRASE = re.compile(r"\b" + NUMBER_PHRASE, re.IGNORECASE)


def _only_number_phrase(masked: str) -> str | None:
    """The phrase's one number in words ("It takes four and a half hours") when it has no other number; not
    a lone "one" ("this one") or an "a" fraction ("a third pipe"), which prose uses as words."""
    found = _NUMBER_PHRASE.findall(masked)
    if len(found) != 1 or found[0].lower() == "one" or found[0].lower().startswith(("a ", "the ")):
        return None
    return found[0]


def _condition_on_all(masked: str, maths: list[str]) -> str | None:
    """The relation after "all $x$ with/such that ..." that ends the phrase, when it is a relation of that
    one variable ("all $x$ with $-3 \\le x \\le 3$" states ``-3 \\le x \\le 3``)."""
    m = _ALL_SUCH.search(masked)
    if not m:
        return None
    variable, relation = maths[int(m.group(1))], maths[int(m.group(2))]
    named = set(_SINGLE_VARIABLE.findall(_COMMAND.sub(" ", relation)))
    if not _VARIABLE.fullmatch(variable) or named != {variable} or not _RELATION_ITEM.search(relation):
        return None
    return relation


def _relation_list(masked: str, maths: list[str]) -> str | None:
    """Math items that end the phrase joined by or/and/commas, each a relation of the same one variable
    ("holds when $x < -1$ or $x > 4$", "$x = 1$ or $x = 2$"), as a whole; also one such relation after "holds
    when" (``_HOLDS_WHEN``)."""
    m = _TRAILING_ITEMS.search(masked) or _HOLDS_WHEN.search(masked)
    if not m:
        return None
    items = [maths[int(k)] for k in re.findall(r"\x00(\d+)\x00", m.group(1))]
    variables = {frozenset(_SINGLE_VARIABLE.findall(_COMMAND.sub(" ", item))) for item in items}
    if len(variables) != 1 or len(next(iter(variables))) != 1 or not all(map(_RELATION_ITEM.search, items)):
        return None
    solved = _SOLVED.fullmatch(items[-1])
    if solved and " or" not in m.group(1) and not all(map(_SOLVED.fullmatch, items[:-1])):
        return items[-1]  # "so $2x = 16$ and $x = 8$": steps of one solution, the last one solved
    return _unmask(m.group(1), maths)


def _reply(masked: str, maths: list[str]) -> str | None:
    """The yes or no that opens the clause, when the clause names no value, or when it goes on to a claim with a verb
    (``_CLAIM_VERB``) and no value right after its first linking words, so that its values name what the reply is
    about: "No, 91 is not prime." and "Yes, 345 is divisible by 3." state the reply; "No, the sum is 14." states 14
    and "No, 45." states 45."""
    m = _YES_NO.match(masked)
    if not m:
        return None
    rest = masked[m.end() :]
    if not _MATH_OR_NUMBER.search(rest):
        return m.group(1)
    if not _CLAIM_VERB.search(rest):
        return None  # "No, 45.": the value is the answer
    links = itertools.islice(_LINK.finditer(rest), _REPLY_LINKS)
    if any(_leading(rest[link.end() :], maths) is not None for link in links):
        return None  # "No, the sum is 14.": the value after "is" is the answer
    return m.group(1)


def _without_unit_restatement(text: str) -> str:
    """The phrase without an amount's restatement in another unit of the same kind (``_UNIT_RESTATEMENT``)."""
    if "," not in text:
        return text
    for m in _UNIT_RESTATEMENT.finditer(text):
        if m.group(2).lower() != m.group(6).lower() and (m.group(4) or quantities_verdict(m.group(5), m.group(1))):
            return text[: m.start(3)] + text[m.end(3) :]
    return text


def _closing_form(tail: str, maths: list[str]) -> str | None:
    """The item a closing form names (``_COMMITTED``, ``_CONFIRMED``, ``_COUNT_VERB``, ``_ONLY_LETTER``, an
    interval or set after "i.e."), or None."""
    for form in (_COMMITTED, _CONFIRMED, _COUNT_VERB, _ONLY_LETTER, _FOR_TOTAL, _ENDING_TIME):
        if m := form.search(tail):
            return _unmask(m.group(1), maths)
    m = _RESTATED.search(tail)
    if m and _SET_NOTATION.search(maths[int(m.group(1).strip("\x00"))]):
        return _unmask(m.group(1), maths)
    return None


def _hedged(text: str, marked: bool, depth: int) -> str | None:
    """"A or B" for a phrase that states A and then leaves B open ("probably 12, but it might be 13", "12 if ...,
    or 13 if ..."), so the hedge is a list (never equal to one value); None when no value follows the alternative."""
    alt = _ALTERNATIVE.search(text) or _conditional_alternative(text)
    if not alt or alt.start() == 0:
        return None
    second = answer_in_phrase(text[alt.end() :], marked=False, _depth=depth + 1)
    first = answer_in_phrase(text[: alt.start()], marked=marked, _depth=depth + 1) if second is not None else None
    return f"{first} or {second}" if first is not None else None


def _conditional_alternative(text: str) -> re.Match | None:
    """The ``_CONDITIONAL_ALTERNATIVE`` after a value that opens another value with its own condition, if any."""
    if " if " not in text and " when " not in text and " unless " not in text:
        return None
    for m in _CONDITIONAL_ALTERNATIVE.finditer(text):
        own = m.group(2) or _OWN_CONDITION.search(text, m.end(), m.end() + _TAIL_CHARS)
        if own and _VALUE_BEFORE_CONDITION.search(text, max(0, m.start() - 40), m.start()):
            return m
    return None


def _mixed_numbers_joined(text: str) -> str:
    """``5 and 1/4 cups`` -> ``5 1/4 cups`` (``_MIXED_WITH_AND``) where the fraction is proper."""
    def joined(m: re.Match) -> str:
        numerator, denominator = int(m.group(2)), int(m.group(3))
        return f"{m.group(1)} {numerator}/{denominator}" if 0 < numerator < denominator else m.group(0)

    return _MIXED_WITH_AND.sub(joined, text) if " and " in text else text


def _approximation_last(text: str) -> str:
    """A value and its restatement as approximately a decimal written as one chain ending in the approximation
    (``_APPROXIMATE_RESTATEMENT``)."""
    def chain(m: re.Match) -> str:
        return f"${(m.group(1) or m.group(2)).strip()} \\approx {m.group(3)}$"

    return _APPROXIMATE_RESTATEMENT.sub(chain, text) if _APPROXIMATE_WORD.search(text) else text


# a clause after the answer that compares it with another amount (", which is 6 more than his sister's 9", ", 5
# fewer than last year") is set aside: the amounts in it are the difference and the other amount, not the answer
_COMPARISON_CLAUSE = re.compile(r", (?:which is |that is |that's )?(?:\$[^$]{1,40}\$|\$?\d[\d.,]*)(?: [a-z]+){0,2} "
                                r"(?:more|fewer|less|greater|higher|lower|larger|smaller|longer|shorter|older"
                                r"|younger|heavier|lighter|cheaper)\b[^.;]{0,80}?\bthan\b")
# "$x$-axis", "$n$-th", "$k$-digit": a letter in math joined to a word is part of that word, not a stated value
_MATH_LETTER_IN_WORD = re.compile(r"\$([A-Za-z])\$-(?=[a-z])")
_APPROXIMATE_WORD = re.compile(r"\b(?:about|approximately|roughly|around|nearly)\b|≈|\\approx")


def answer_in_phrase(text: str, *, marked: bool, _depth: int = 0) -> str | None:
    """The answer stated by ``text``. ``marked``: the phrase follows an answer marker ("The answer is"), so
    its leading item and a short word answer ("Evelyn") count; unmarked, only a linked or single item.
    Reason clauses are set aside first: "Because $x \\ne 0$, $x = 5$", "... is $\\frac14$ since ...",
    "3x+1, which is linear" (after a marker)."""
    text = _ASIDE.sub("", text.strip()) if "(" in text else text.strip()
    text = _BOLD.sub(r"\1", text) if "**" in text else text  # "The gcd is **6**." reads as "The gcd is 6."
    text = _mixed_numbers_joined(clock_times_in_digits(text))
    text = _MATH_LETTER_IN_WORD.sub(r"\1-", text) if "$-" in text else text
    if _depth < 3 and (hedged := _hedged(text, marked, _depth)) is not None:
        return hedged
    hypothetical = _HYPOTHETICAL_CLAUSE.search(text)
    if hypothetical and hypothetical.start() > 0:
        text = text[: hypothetical.start()]
    comparison = _COMPARISON_CLAUSE.search(text)
    if comparison and comparison.start() > 0:
        text = text[: comparison.start()]
    restatement = _BASE_RESTATEMENT.search(text)
    if restatement and _BASED_NUMERAL.search(text, 0, restatement.start()):
        text = text[: restatement.start()]
    text = _approximation_last(_without_unit_restatement(text))
    if not text:
        return None
    if calendar := _CALENDAR.search(text[-_TAIL_CHARS:]):
        return calendar.group(1)  # "2 days after Monday, which is a Wednesday"
    if is_bare(text, allow_text=marked):
        return text
    if _depth < 3:
        fronted = None if marked else _FRONTED_REASON.match(text)
        if fronted:  # the main clause follows the reason
            return answer_in_phrase(text[fronted.end() :], marked=False, _depth=_depth + 1)
        cut = (_CLAUSE_END if marked else _REASON).search(text)
        if cut and cut.start() > 0:
            if choice := _NAMED_CHOICE.search(text[max(0, cut.start() - _TAIL_CHARS) : cut.start()]):
                return choice.group(1)  # "the correct choice is A, since B, C and D fail": the letter, not the list
            rest = text[cut.end() :]
            comma = rest.find(", ") if not marked else -1
            if comma >= 0:  # "since she used 120, she used 7/20*120 = 42": the main clause follows the reason
                return answer_in_phrase(text[: cut.start()] + ", " + rest[comma + 2 :], marked=False,
                                        _depth=_depth + 1)
            return answer_in_phrase(text[: cut.start()], marked=marked, _depth=_depth + 1)
    return _answer_in_clause(text, marked)


def _answer_in_clause(text: str, marked: bool) -> str | None:
    """The answer one clause (reasons and asides already set aside) states: a closing form, a whole stated
    value, the leading item after a marker, a named result, a condition or relation list, a named choice, the
    item after the last link, a lone item or number phrase, or (after a marker) a short word answer."""
    masked, maths = _mask(text)
    masked = _mask_amounts_in_units(_mask_letter_digits(masked, maths), maths)
    for exact in _EXACTLY.finditer(masked):
        k = int(exact.group(1))
        maths[k] = _APPROX.split(maths[k], 1)[0].strip() or maths[k]
    if (closing := _closing_form(masked[-_TAIL_CHARS:], maths)) is not None:
        return closing
    stated = _stated_whole(masked[-_TAIL_CHARS:], maths)
    if stated is not None:
        return _unmask(stated, maths)
    if marked and (lead := _leading(masked, maths)) is not None:
        return lead
    if not marked and (named := _NAMED_RESULT.search(masked[-_TAIL_CHARS:])):
        return _unmask(named.group(1), maths)
    if condition := _condition_on_all(masked[-_TAIL_CHARS:], maths):
        return condition
    if relations := _relation_list(masked[-_TAIL_CHARS:], maths):
        return relations
    if choice := _NAMED_CHOICE.search(masked[-_TAIL_CHARS:]):
        return choice.group(1)
    verdict = _VERDICT.search(masked[-_TAIL_CHARS:])
    if verdict and _CONCLUDED_VERDICT.search(masked) and _names_no_value(re.split(r"[,;]", masked)[-1], maths):
        return verdict.group(1) or verdict.group(2) or verdict.group(3)
    links = list(_LINK.finditer(masked))
    for k, link in enumerate(links[-3:][::-1]):
        if k and link.group(0).lower() not in _COPULAS:
            continue  # before the last link, only "is"/"=" state a result ("the area is 12, which is ...")
        scope = masked[link.end() :]
        if (lead := _leading(scope, maths)) is not None:
            return lead
        frame = _FRAME.match(scope)  # "so in 6 days he reads 90 pages": the clause after the time frame
        items = _MATH_OR_NUMBER.findall(scope[frame.end() :] if frame else scope)
        if len(items) == 1 and link.group(0).lower() in _CONCLUSIONS:  # "so Tom has 9 more marbles"
            return _unmask(items[0], maths)
    counted = _COUNT_ADVERB.search(masked[-_TAIL_CHARS:])
    if counted and _names_no_value(re.split(r"[,;]", masked)[-1], maths):  # "..., so it happens twice"
        return _ADVERB_COUNTS[counted.group(1).lower()]
    if (reply := _reply(masked, maths)) is not None:
        return reply  # "No, it is not possible.", "No, 91 is not prime."
    if verdict and _names_no_value(re.split(r"[,;]", masked)[-1], maths):  # no value in the verdict's clause
        return verdict.group(1) or verdict.group(2) or verdict.group(3)
    items = _MATH_OR_NUMBER.findall(masked)
    if len(items) > 1 and not _is_unsolved_equation(items[-1], maths):
        # "the line $y = x$ makes an angle of $45^\circ$": the equation is the subject, the last item the value
        items = [item for item in items if not _is_unsolved_equation(item, maths)]
    if len(items) == 1:
        return _unmask(items[0], maths)
    if not items and (spelled := _only_number_phrase(masked)):
        return spelled
    if marked and not items and len(text) <= 60 and 1 <= len(prose_words(text)) <= 3:
        return text
    return None
