"""Final-answer extraction from model and reference text.

The text is first tidied (runs of spaces become one space, GSM8K calculator annotations go, superscript digits
become powers), a reasoning block that something follows (``<think>...</think>``,
``<|begin_of_thought|>...<|end_of_thought|>``, ``◁think▷...◁/think▷``, an ``analysis`` channel before the
``final`` one) is dropped (a block that nothing follows is the answer text, without its tags), an
``<answer>...</answer>`` part is read alone, and the text is cut where a model runs on into a new chat turn or
few-shot problem (a special token such as ``<|im_start|>`` or ``</s>``, or a line starting ``Question:`` /
``Problem:`` / ``Q:`` / ``User:`` / ``Human:`` / ``### Instruction:``, also in bold and as ``**Next
problem:**``), and a chat closing after the answer is set aside (an offer of more help that opens a sentence,
"Let me know if ...", "Would you like ...?", "If you want, I can ...", an aside after a number, "By the way,
...", "Pro tip: ...", and emoji at the end). When the model then corrects itself ("Wait, I made an error", "Oops, I
miscounted", "That's wrong", "Correction:", "I forgot ..."), the rules below run on the text from the last correction on
first, so the corrected answer wins over an earlier box or marker; only when that part states nothing do they run on the
whole text. A later sentence that reconsiders ("Wait — ...", "Hold on, ...", "Actually, ...") revises the answer the
same way when its part concludes anew (a box, a marker, a last sentence with "so"/"thus") and does more than check. Then
the first rule that finds something wins:
1. GSM8K ``#### n``: the FIRST one counts (a model may write more in a run-on it did not mark), unless a correction
   or reconsidering sentence follows it and another ``####`` follows that ("#### 142 Wait, he also read 20 pages
   first ... #### 122": the revised one counts);
2. the last ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces; ``\\boxed 5`` too). Boxes are not merged,
   except boxes joined only by "and"/"or"/a comma (``x = \\boxed{2} or x = \\boxed{3}``), which form a list; a
   label in text that opens the box (``\\boxed{\\text{The answer is } 27}``) is not part of the answer;
3. PRM800K ``# Answer`` block: the first non-empty line after the last ``# Answer`` (not ``### Answer``);
4. an answer marker: "final answer is", "the answer is" (or "must be"), "Answer:", "**Final Answer**" (the answer on the
   next line), a line starting ``A:`` (the GSM8K example model solutions) or ``Final:``, "X is the answer".
   The last marker whose phrase yields an answer counts; see ``phrases.answer_in_phrase`` for the phrase
   rules ("Final Answer: The largest $n$ is 34." gives 34);
5. a bold final line ``**X**`` (a bold heading label that text follows, "**Solution.** ...", is not one);
6. a bare prediction: a short single line that is not a sentence (``-5``, ``\\frac12``, ``$29.00``) is its
   own answer;
7. the last sentence, when the text ends a sentence (or is a closed reasoning block that nothing follows,
   whose last line counts as a sentence): its linked or only number/math ("So she earns \\$18.",
   "We conclude that there are 6 ways."); hypotheticals after an answer sentence ("If she had waited, she
   would have paid $18.", "If the crew were doubled, it would take 3 days.", "If two more came, each would pay
   $8", and after a concluding sentence "If he buys 8 more next week, he'll have 60.") and remarks that compare
   the answer with another amount ("That's 12 more than in May.") are set aside; the
   sentence before the last only when the last has no number or math at all ("I hope this helps!"); a last
   line that ends no sentence but labels a result ("Area = 30", "Time: 30 minutes") states its value;
8. optionally (``number_fallback=True``, for GSM8K-style sets) the last number in the text.
A box that never closes (a truncated solution) gives None, and so does text longer than ``MAX_TEXT_CHARS``.
"""
from __future__ import annotations

import re

from mathray.grading.phrases import answer_in_phrase, is_bare, segments

MAX_TEXT_CHARS = 200_000
MAX_PHRASE_CHARS = 4_000  # an answer phrase or final sentence longer than this is not read further
_BOX_COMMANDS = ("\\boxed", "\\fbox")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_NEWLINES = re.compile(r" ?\n[ \n]*")
_CALCULATOR = re.compile(r"<<[^<>\n]{0,400}>>")
_SPECIAL_TOKEN = re.compile(r"<\|[A-Za-z0-9_]{1,40}\|>|<｜[^｜\n]{1,40}｜>|</s>|<(?:start|end)_of_turn>|\[INST\]")
_BLOCK_END = re.compile(r"</(?:think|thinking|reasoning|seed:think)>|<\|end_of_thought\|>|◁/think▷"
                        r"|<\|channel\|> ?final ?<\|message\|>")
_BLOCK_TAG = re.compile(r"</?(?:think|thinking|reasoning|seed:think)>|<\|(?:begin|end)_of_(?:thought|solution)\|>"
                        r"|◁/?think▷|(?:<\|start\|>assistant)?<\|channel\|> ?(?:analysis|final) ?<\|message\|>")
_NEW_TURN = re.compile(r"\n ?(?:#{1,4} ?)?(?:\*\*)?(?:Question|QUESTION|Problem|PROBLEM|Q|User|USER|Human|Instruction"
                       r"|(?i:(?:next|new|another|follow-up|bonus) (?:question|problem|exercise)))"
                       r" ?\d{0,4} ?:")
# a chat closing after the answer: an offer of more help that opens a sentence ("Let me know if you'd like ...",
# "Would you like me to ...?", "Hope this helps!", "If you want, I can ..."), and emoji at the end; "if you want"
# opens an offer only when the sentence goes on to what the writer can do ("If you want the total, add ..." computes)
_OFFER = re.compile(r"(?:^|(?<=[.!?\n]) ?)(?:let me know|feel free|would you like|do you want (?:me )?to|want me to"
                    r"|if you(?:'d| would) like|(?:I )?hope (?:this|that|it) helps|is there anything else|shall I"
                    r"|if you want\b(?=[^.!?\n]{0,60}\bI(?: can|'ll| will| could|'d be| would be)\b))\b",
                    re.IGNORECASE)
_OFFER_TAIL_CHARS = 400
# a chat aside after the answer that opens a sentence ("By the way, if she gives away 5 more she'll have 22.",
# "Great question — that walk took 4 hours!", "Fun fact: ...", "Pro tip: ..."); set aside only when a number or
# math precedes it; a plain "Tip:" line is not one (it may label a tip amount)
_ASIDE = re.compile(r"(?:(?<=[.!?\n]) ?)(?:by the way|fun fact|great question|good question|just for fun|for fun"
                    r"|as a bonus|bonus|side note|as a side note|as an aside|incidentally|p\.s\."
                    r"|(?:pro|quick|handy|helpful|friendly) tips?)\b", re.IGNORECASE)
_EMOJI = re.compile(r"[\s\u2600-\u27bf\U0001f000-\U0001faff\ufe0f\u200d]")
# a labelled result on a last line that ends no sentence ("Perimeter = 44", "Time: 30 minutes")
_RESULT_LINE = re.compile(r" ?[A-Z][a-z]+(?: [a-z]+){0,3} ?[=:] ?[^ ].*")
_MARKER = re.compile(
    r"\b(?:final answer|answer)(?: to (?:this|the|that) (?:problem|question))?(?:\*\*)? ?"
    r"(?::|=|is\b|would be\b|will be\b|should be\b|must be\b|has to be\b)(?: ?\*\*)?"
    r"|^ ?(?:#{1,6} ?)?(?:\*\*)?(?:final answer|answer)(?:\*\*)? ?:? ?(?:\*\*)? ?$"
    r"|^ ?(?:\*\*)?(?:A|final)(?:\*\*)? ?:(?: ?\*\*)?",
    re.IGNORECASE | re.MULTILINE)
# PRM800K's answer block; a deeper markdown heading ("### Answer", then a sentence) is an answer marker instead
_PRM_ANSWER = re.compile(r"(?<![#\w])# Answer")
_ANSWER_AFTER = re.compile(r"\bis (?:the|our|my) (?:final )?answer\b", re.IGNORECASE)
# a sentence ends at ". " / "! " / "? " or a newline; "i.e. ", "e.g. ", "vs. " do not end one
_SENTENCE_END = re.compile(r"(?<!\bi\.e)(?<!\be\.g)(?<!\b[ie])(?<!\bvs)(?<!\betc)[.!?](?= |\n|$)|\n")
_BARE_BOX_ARGUMENT = re.compile(r"[^\s$]+")
_CORRECTION = re.compile(
    r"\b(?:I|we) (?:have |had )?made (?:an?|one) (?:\w+ )?(?:error|mistake)|\bI (?:mis\w+|was wrong)\b"
    r"|\b(?:that|this)(?:'s| is| was) (?:wrong|incorrect|not (?:right|correct))|\b(?:wait|no|hmm|actually), no\b"
    r"|\boops\b|\bcorrection ?:|\bon second thought\b|\blet me (?:redo|recalculate|recompute|recount|correct|fix)\b"
    r"|\bI (?:forgot|overlooked|neglected|left out|double[- ]counted|mixed up|didn't (?:count|include|account))\b",
    re.IGNORECASE)
_CORRECTION_CUES = ("made", "mis", "wrong", "incorrect", "not right", "not correct", ", no", "oops", "correction",
                    "second thought", "let me", "forgot", "overlooked", "neglected", "left out", "counted",
                    "mixed up", "didn't")  # one of these is in every match of _CORRECTION
# a sentence that opens by reconsidering ("Wait — the dice are distinguishable, ...", "Hold on, ...", "Actually,
# ..."): the text after it revises the answer only when it concludes with a new statement ("So the probability
# is ...", "..., so x = 8", a box, a marker), and a part that only checks ("Wait, let me verify: ...") does not
# revise unless it finds something wrong
_RECONSIDER = re.compile(r"(?:^|(?<=[.!?\n]) ?)(?:but |hmm,? |oh,? )?(?:wait|hold on|hang on|actually|looking again"
                         r"|on reflection)\b", re.IGNORECASE)
_CHECK = re.compile(r"\b(?:check|double-check|verify|verifying|confirm|sanity|plug|substitut)", re.IGNORECASE)
_CONTRADICTION = re.compile(r"\b(?:not|wrong|incorrect|instead|isn't|doesn't|error|mistake)\b|\\neq?\b|≠",
                            re.IGNORECASE)
_CONCLUSION = re.compile(r" ?(?:so|thus|therefore|hence|this gives|that gives|which gives)\b", re.IGNORECASE)
_CONCLUDING_CLAUSE = re.compile(r"[,;] (?:and )?(?:so|thus|therefore|hence)\b", re.IGNORECASE)
# a sentence that only says what would have happened ("If she had waited, she would have paid $18.", "Had it
# gone faster, ...", "Suppose he worked 10 hours; he would earn $150", "Assuming he worked 45 hours instead,
# he'd earn $405", a parenthesised "(Had he kept them, he would have 20.)", a changed scenario "If two more
# friends joined, each would pay $8.", "If they also rent skates, it would cost $40.", "Without the coupon, she would
# have paid $30."); an "If ..., then ..."
# sentence, or one with a simple past and no change of quantity ("If they decided to share, each would get 4"),
# computes the result the way GSM8K solutions do and is not one; an inverted or stative counterfactual is one
# ("Were the coin fair, it would ...", "If the word had two pairs of repeated letters, there would be ...")
_PARTICIPLE = (r"(?:not |n't )?(?:\w+(?:ed|en|wn)|bought|brought|paid|spent|sold|left|kept|got|made|had|done|gone|won"
               r"|lost|put|set|read|thought|taught|built|sent|told|held|found|heard|met)\b")
_WOULD = r"(?:\b(?:would|could)\b|\w'd\b)"
_HYPOTHETICAL = re.compile(r" ?(?:\(? ?(?:(?:note|notice) that |but |however,? |alternatively,? )?(?:"
                           r"if\b(?![^.;]*\bthen\b)[^.;]*?\b(?:had %s|instead\b|(?:were|had)\b[^.;]*?%s)"
                           r"|(?:had|were|should)\b[^.;]*?\bwould\b"
                           r"|if\b(?![^.;]*\bthen\b)[^.;]*?\b(?:more|fewer|less|another|extra|additional|also)\b"
                           r"[^.;]*?%s"
                           r"|without\b[^.;]*?\bwould have\b"
                           r"|(?:suppos|assum)(?:e|ing)\b[^.]*%s"
                           r")|\((?=[^()]*%s[^()]*\)$))" % (_PARTICIPLE, _WOULD, _WOULD, _WOULD, _WOULD), re.IGNORECASE)
# a changed scenario in the future ("If he buys 8 more goats next week, he'll have 60."): set aside only after a
# sentence that concludes ("Therefore, the farmer has 52 animals."), since GSM8K solutions compute with such a
# sentence too
_FUTURE_CHANGE = re.compile(r" ?if\b(?![^.;]*\bthen\b)[^.;]*?\b(?:more|fewer|less|another|extra|additional)\b"
                            r"[^.;]*?(?:\bwill\b|\w'll\b)", re.IGNORECASE)
# a remark after the answer sentence that compares its amount with another ("That's 12 more than in May.",
# "This is 3 times as many as in May.", "That is 9 years younger than her brother."): the sentence before states the
# answer
_COMPARISON_REMARK = re.compile(r" ?(?:that|this)(?:'s| is| was) [^.!?]{0,60}?\b(?:(?:more|fewer|less|greater|higher"
                                r"|lower|larger|smaller|bigger|longer|shorter|older|younger|heavier|lighter|cheaper"
                                r"|faster|slower|earlier|later)\b[^.!?]{0,60}?\bthan|as (?:many|much)\b[^.!?]{0,60}?"
                                r"\bas)\b", re.IGNORECASE)
# an ending that says it is unsure and only tentatively picks a value ("I'm not sure which method has the error --
# possibly 2/3 is the right one", "I'm not entirely sure ... maybe 1/3? It's hard to say ...") commits to no answer
_UNSURE = re.compile(r"\bI(?:'m| am) (?:not (?:(?:entirely|completely|totally|quite|fully) )?(?:sure|certain|confident)"
                     r"|unsure|uncertain)\b|\bI (?:can't|cannot|can not) (?:tell|decide|be sure)\b"
                     r"|\b(?:hard|difficult|impossible) to (?:say|tell)\b", re.IGNORECASE)
_TENTATIVE = re.compile(r"\b(?:possibly|perhaps|maybe|probably|might|may)\b", re.IGNORECASE)
_BOLD = re.compile(r"\*\*([^*\n]+)\*\*")
# a bold heading label that text follows on its line ("**Solution.** Subtracting 5 gives $x = 5$.", "**Step 3:**
# ...") names a part of the text, not its answer
_LABEL = re.compile(r" ?[A-Za-z][A-Za-z ]{0,30}(?: \d{1,2})? ?[.:] ?")
_BOX_JOIN = re.compile(r"[\s$]*(?:,|;|and|or|\\text\{ ?(?:and|or) ?\}|\\quad|\\qquad)?[\s$]*"
                       r"(?:[a-zA-Z](?:_\{?\d\}?)? ?= ?)?[\s$]*")
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_SUPERSCRIPTS = re.compile("[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+")
# Unicode fraction characters as digits ("¾" -> "3/4"); after a whole number they make a mixed number ("2½" ->
# "2 1/2"); the fraction slash is a slash ("1⁄8" -> "1/8")
_FRACTION_CHARS = {"½": "1/2", "⅓": "1/3", "⅔": "2/3", "¼": "1/4", "¾": "3/4", "⅕": "1/5", "⅖": "2/5", "⅗": "3/5",
                   "⅘": "4/5", "⅙": "1/6", "⅚": "5/6", "⅐": "1/7", "⅛": "1/8", "⅜": "3/8", "⅝": "5/8", "⅞": "7/8",
                   "⅑": "1/9", "⅒": "1/10"}
_FRACTION_CHAR = re.compile("(\\d)? ?([%s])" % "".join(_FRACTION_CHARS))
# a box that writes its answer as a sentence starts with a label in text: "\boxed{\text{The answer is } 27}"
_BOX_LABEL = re.compile(r" ?\\(?:text|textbf|mathrm) ?\{ ?(?:the )?(?:final )?answer(?: is)? ?:? ?\} ?",
                        re.IGNORECASE)


def tidy(text: str) -> str:
    """One space for each run of spaces, one or two newlines for each run of blank lines, and no GSM8K
    calculator annotations (``= <<4*2=8>>8`` -> ``= 8``: the model's own text states the result), the
    Unicode minus sign written as ``-``, Unicode superscript digits as a power (``10⁵`` -> ``10^{5}``) and
    Unicode fractions in digits (``2½`` -> ``2 1/2``, the mixed number)."""
    text = _CALCULATOR.sub("", _SPACES.sub(" ", text)).replace("\u2212", "-")  # U+2212 MINUS SIGN
    if not text.isascii():
        if _SUPERSCRIPTS.search(text):
            text = _SUPERSCRIPTS.sub(lambda m: "^{%s}" % m.group(0).translate(_SUPERSCRIPT_DIGITS), text)
        text = _FRACTION_CHAR.sub(_fraction_in_digits, text.replace("\u2044", "/"))  # U+2044 FRACTION SLASH
    return _NEWLINES.sub(lambda m: "\n\n" if m.group(0).count("\n") > 1 else "\n", text)


def _fraction_in_digits(m: re.Match) -> str:
    whole = f"{m.group(1)} " if m.group(1) else m.group(0)[: -len(m.group(2))]
    return whole + _FRACTION_CHARS[m.group(2)]


def set_aside_reasoning(text: str) -> str:
    """The text after the last reasoning block (``<think>...</think>``, ``<|begin_of_thought|>...<|end_of_thought|>``,
    ``◁think▷...◁/think▷``, an ``analysis`` channel before the ``final`` one) when anything follows it; else
    the whole text without the block's tags (a block that nothing follows, or that never closes, is all the
    model wrote)."""
    if "<" not in text and "◁" not in text:
        return text
    ends = list(_BLOCK_END.finditer(text))
    if ends:
        after = _BLOCK_TAG.sub("", text[ends[-1].end() :])
        if after.strip():
            return after
    return _BLOCK_TAG.sub("", text)


def closed_block_only(text: str) -> bool:
    """Whether the text is a reasoning block that closes with nothing after it: the model's notes are complete,
    so their last line is a finished statement even without a full stop ("7*14 = 98, remainder 2")."""
    if "<" not in text and "◁" not in text:
        return False
    ends = list(_BLOCK_END.finditer(text))
    return bool(ends) and not _BLOCK_TAG.sub("", text[ends[-1].end() :]).strip()


def inside_answer_tags(text: str) -> str:
    """What the last closed ``<answer>...</answer>`` holds (the answer part of a tagged output), if anything."""
    start = text.rfind("<answer>")
    end = text.find("</answer>", start) if start >= 0 else -1
    if end < 0 or not text[start + len("<answer>") : end].strip():
        return text
    return text[start + len("<answer>") : end]


def cut_runon(text: str) -> str:
    """The text up to a special chat token or a new few-shot problem (not at the very start)."""
    for m in _SPECIAL_TOKEN.finditer(text):
        if text[: m.start()].strip():
            text = text[: m.start()]
            break
    m = _NEW_TURN.search(text, 1)
    return text[: m.start()] if m else text


def set_aside_chat_closing(text: str) -> str:
    """The text before an offer of more help that opens a sentence near its end and follows other text, or before
    an aside that follows a number or math ("By the way, ..."), without emoji at the end."""
    text = _cut_at_first(_OFFER, text, lambda before: before.strip())
    text = _cut_at_first(_ASIDE, text, lambda before: re.search(r"[\d$\\]", before))
    end = len(text.rstrip())
    if not end or text[end - 1].isascii():
        return text
    while end and _EMOJI.match(text, end - 1):
        end -= 1
    return text[:end]


def _cut_at_first(pattern: re.Pattern, text: str, keep) -> str:
    """The text before the first match of ``pattern`` in its last ``_OFFER_TAIL_CHARS`` characters whose preceding
    text satisfies ``keep``; the whole text when there is none."""
    start = max(0, len(text) - _OFFER_TAIL_CHARS)
    m = next((m for m in pattern.finditer(text, start) if keep(text[: m.start()])), None)
    return text[: m.start()].rstrip() if m else text


def _box_at(text: str, start: int) -> tuple[str, int] | None:
    """(content, end index) of the box command at ``start``, or None if it never closes."""
    cmd = next(c for c in _BOX_COMMANDS if text.startswith(c, start))
    i = start + len(cmd)
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text):
        return None
    if text[i] != "{":  # "\boxed 5": the argument runs to the next space or "$"
        m = _BARE_BOX_ARGUMENT.match(text, i)
        return (m.group(0), m.end()) if m and i > start + len(cmd) else None
    depth = 0
    for j in range(i, len(text)):
        c = text[j]
        if (c == "{" or c == "}") and text[j - 1] == "\\":
            continue  # escaped braces \{ \}
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j], j + 1
    return None


def _box_starts(text: str) -> list[int]:
    starts = []
    for cmd in _BOX_COMMANDS:
        k = text.find(cmd)
        while k >= 0:
            starts.append(k)
            k = text.find(cmd, k + 1)
    return sorted(starts)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces), or of ``\\boxed 5``.

    Returns None when there is no closed box (a truncated solution)."""
    if not text:
        return None
    start = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    if start < 0:
        return None
    found = _box_at(text, start)
    return found[0] if found else None


def _boxed_list(text: str) -> str | None:
    """The last box, joined with the boxes before it that only "and"/"or"/commas separate from it."""
    starts = _box_starts(text)
    if not starts:
        return None
    last = _box_at(text, starts[-1])
    if last is None:
        return None
    items, joins, nxt = [last[0]], [], starts[-1]
    for k in range(len(starts) - 2, max(-1, len(starts) - 9), -1):
        found = _box_at(text, starts[k])
        if found is None or found[1] > nxt:
            break
        between = text[found[1] : nxt]
        if len(between) > 40 or not _BOX_JOIN.fullmatch(between):
            break
        joins.append(" or " if re.search(r"\bor\b", between) else ", ")
        items.append(found[0])
        nxt = starts[k]
    if len(items) == 1:
        return items[0]
    items.reverse()
    joins.reverse()
    return items[0] + "".join(j + x for j, x in zip(joins, items[1:]))


def clean(ans: str | None) -> str | None:
    """Strip math delimiters, a trailing full stop, a leading colon and surrounding bold/space."""
    if ans is None:
        return None
    for _ in range(3):
        ans = ans.strip().strip("*").strip()
        if ans.startswith(":"):
            ans = ans[1:]
        if ans.endswith((".", ",", ";", ":")) and not ans.endswith("\\."):
            ans = ans[:-1].rstrip()
        for a, b in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if len(ans) >= len(a) + len(b) and ans.startswith(a) and ans.endswith(b):
                ans = ans[len(a) : -len(b)]
    return ans.strip() or None


def _phrase_after(text: str, pos: int) -> str:
    """The sentence that starts at ``pos``: to the next sentence end outside math; the next line when
    the marker ends its line; a display-math block in full."""
    rest = text[pos : pos + MAX_PHRASE_CHARS]
    if not rest.split("\n", 1)[0].strip(" *:"):
        rest = rest.lstrip(" *:\n")
    out = []
    for kind, s in segments(rest):
        if kind == "math":
            out.append(_as_math(s))
            continue
        m = _SENTENCE_END.search(s)
        if m:
            out.append(s[: m.start()])
            break
        out.append(s)
    return "".join(out)


def _sentence_before(text: str, pos: int) -> str:
    head = text[max(0, pos - MAX_PHRASE_CHARS) : pos]
    cut = max(head.rfind(". "), head.rfind("\n"), head.rfind("! "), head.rfind("? "))
    return head[cut + 1 :]


def _from_markers(text: str) -> str | None:
    found = [(m.end(), True) for m in _MARKER.finditer(text)]
    found += [(m.start(), False) for m in _ANSWER_AFTER.finditer(text)]
    for pos, after in sorted(found)[-6:][::-1]:
        phrase = _phrase_after(text, pos) if after else _sentence_before(text, pos)
        ans = clean(answer_in_phrase(phrase, marked=True))
        if ans is not None:
            return ans
    return None


def last_sentences(text: str, count: int = 2) -> list[str]:
    """The last ``count`` non-empty sentences (last first), split at sentence ends and newlines outside math."""
    tail = text[-MAX_PHRASE_CHARS:].rstrip(" *\n.!")
    sentences, current = [], []
    for kind, s in segments(tail):
        if kind == "math":
            current.append(_as_math(s))
            continue
        parts = _SENTENCE_END.split(s)
        for p in parts[:-1]:
            sentences.append("".join(current) + p)
            current = []
        current.append(parts[-1])
    sentences.append("".join(current))
    return [x for x in sentences if x.strip()][::-1][:count]


def _as_math(s: str) -> str:
    return "$" + s.strip().replace("\n", " ") + "$"


def _ends_sentence(text: str) -> bool:
    t = text.rstrip(" *\n")
    return t.endswith((".", "!", "$", "\\]", "\\)", ".)"))  # ".)": a closing parenthesised sentence


def extract_answer(text: str | None, *, number_fallback: bool = False) -> str | None:
    """The final answer in ``text`` (see the module docstring for the rules), or None."""
    if not text or len(text) > MAX_TEXT_CHARS:
        return None
    text = tidy(text)
    ended = closed_block_only(text)
    text = set_aside_chat_closing(cut_runon(inside_answer_tags(set_aside_reasoning(text))))
    if "####" in text:
        line = _hash_answer_line(text)
        return clean(answer_in_phrase(clean(line) or "", marked=True) or line)
    revision = _last_correction(text)
    reconsidered = _reconsidered_answer(text, after=-1 if revision is None else revision, ended=ended)
    if reconsidered is not None:
        return reconsidered
    if revision is not None:
        revised = _stated_answer(text[revision:], number_fallback=False, bare=False, ended=ended)
        if revised is not None:
            return revised
    return _stated_answer(text, number_fallback=number_fallback, bare=True, ended=ended)


_MAX_HASH_MARKS = 20


def _hash_answer_line(text: str) -> str:
    """The line after GSM8K's ``####``: the first one counts (a model may run on into more it did not mark), unless
    the text after it corrects or reconsiders ("Wait, he also read 20 pages ...") before another ``####``: the
    last such revised ``####`` counts."""
    parts = text.split("####", _MAX_HASH_MARKS)
    chosen = 1
    for k in range(2, len(parts)):
        between = parts[k - 1]
        if _CORRECTION.search(between) or _RECONSIDER.search(between):
            chosen = k
    return parts[chosen].lstrip(" ").split("\n", 1)[0]


def _reconsidered_answer(text: str, *, after: int, ended: bool) -> str | None:
    """The answer after the last sentence that reconsiders (``_RECONSIDER``) past ``after``, when that part
    concludes anew (a box, a marker, or a last sentence opening "So"/"Thus"/...) and is not only a check."""
    start = max(0, len(text) - MAX_PHRASE_CHARS, after + 1)
    cue = None
    for cue in _RECONSIDER.finditer(text, start):
        pass
    if cue is None:
        return None
    part = text[cue.start() :]
    if _CHECK.search(part) and not _CONTRADICTION.search(part):
        return None
    if _box_starts(part) or _MARKER.search(part) or _ANSWER_AFTER.search(part):
        return _stated_answer(part, number_fallback=False, bare=False, ended=ended)
    sentences = last_sentences(part, 3)
    while len(sentences) > 1 and _HYPOTHETICAL.match(sentences[0]):
        sentences.pop(0)
    if sentences and (_CONCLUSION.match(sentences[0]) or _CONCLUDING_CLAUSE.search(sentences[0])):
        return clean(answer_in_phrase(sentences[0], marked=False))
    return None


def _last_correction(text: str) -> int | None:
    """Where the last self-correction starts ("Wait, I made an error", "Oops, I miscounted", "That's wrong")."""
    start = max(0, len(text) - MAX_PHRASE_CHARS)
    tail = text[start:].lower()
    if not any(cue in tail for cue in _CORRECTION_CUES):
        return None
    last = None
    for m in _CORRECTION.finditer(text, start):
        last = m.start()
    return last


def _stated_answer(text: str, *, number_fallback: bool, bare: bool, ended: bool) -> str | None:
    """Rules 2-8 of the module docstring on ``text`` (rule 6, a bare prediction, only with ``bare``; ``ended``:
    the text is known to be complete, so its last line counts as a sentence without a full stop)."""
    boxed = _boxed_list(text)
    if boxed is not None:
        label = _BOX_LABEL.match(boxed)
        return clean(boxed[label.end() :] if label and boxed[label.end() :].strip() else boxed)
    if "\\boxed" in text or "\\fbox" in text:
        return None  # the last box never closes: a truncated solution
    if _unsure_ending(text):
        return None
    blocks = list(_PRM_ANSWER.finditer(text))
    if blocks:
        line = next((ln for ln in text[blocks[-1].end() :].split("\n") if ln.strip()), None)
        return clean(line)
    ans = _from_markers(text)
    if ans is not None:
        return ans
    last_line = next((ln for ln in reversed(text.split("\n")) if ln.strip()), "")
    bold = [m.group(1) for m in _BOLD.finditer(last_line)
            if not (_LABEL.fullmatch(m.group(1)) and last_line[m.end() :].strip())]
    if bold:
        return clean(answer_in_phrase(bold[-1], marked=True))
    if bare and is_bare(text):
        return clean(text)
    if ended or _ends_sentence(text):
        ans = _from_last_sentences(text)
        if ans is not None:
            return ans
    elif _RESULT_LINE.fullmatch(last_line):
        return clean(answer_in_phrase(last_line, marked=False))
    if number_fallback:
        nums = _NUMBER.findall(text)
        if nums:
            return clean(nums[-1].replace("$", ""))
    return None


def _unsure_ending(text: str) -> bool:
    """Whether the last sentences say the writer is unsure and the last one is tentative, or the last one names no
    value ("It's hard to say.") and the one before it only tentatively names one."""
    sentences = last_sentences(text, 3)
    if not sentences:
        return False
    if len(sentences) > 1 and not re.search(r"[\d$\\]", sentences[0]) and _TENTATIVE.search(sentences[1]):
        tentative, said = sentences[1], sentences
    else:
        tentative, said = sentences[0], sentences[:2]
    return bool(_TENTATIVE.search(tentative) and any(map(_UNSURE.search, said)))


def _from_last_sentences(text: str) -> str | None:
    """The answer the last sentence states. Hypotheticals and comparing remarks after a sentence that states an
    answer ("..., so she paid $24. If she had waited, she would have paid $18.", "That's 5 more than ...") are set
    aside; the sentence before the last
    counts when the last has no number or math at all ("I hope this helps!")."""
    sentences = last_sentences(text, 4)
    k = 0
    while k < len(sentences) - 1 and (_HYPOTHETICAL.match(sentences[k]) or _COMPARISON_REMARK.match(sentences[k])
                                      or _FUTURE_CHANGE.match(sentences[k]) and _CONCLUSION.match(sentences[k + 1])):
        k += 1
    if k:
        ans = clean(answer_in_phrase(sentences[k], marked=False))
        if ans is not None:
            return ans
    last, *before = sentences
    ans = clean(answer_in_phrase(last, marked=False))
    if ans is None and before and not re.search(r"[\d$\\]", last):
        ans = clean(answer_in_phrase(before[0], marked=False))
    return ans


def extract_reference(solution: str) -> str | None:
    """The reference answer in a reference solution (MATH: last box; GSM8K: ``####``)."""
    return extract_answer(solution)
