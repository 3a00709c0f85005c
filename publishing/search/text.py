"""Text processing for Chinese search: normalisation, tokens, pinyin, query parsing.

Index and query go through the same steps, so whatever a person types meets the text the same
way it was indexed:

- normalise: NFKC (full-width → half-width), traditional → simplified character by character
  (a map built once from OpenCC's t2s, less the characters that are standard simplified ones
  themselves: 乾 stays 乾, not 干), lower case;
- tokens: a run of Chinese characters becomes its overlapping bigrams plus its last character
  (烟台市 → 烟台 台市 市), a run of latin letters/digits stays one token (its first MAX_TOKEN
  characters); a name (name_texts) is tokenised with its Chinese runs that only punctuation or
  spaces separate joined (通百鑫（烟台）调味品 → 通百鑫烟台调味品) and, when a bracketed part
  sits inside it, also without that part (通百鑫调味品), as people type names;
- entity names also get pinyin tokens (pypinyin lazy_pinyin): joined syllable bigrams and the
  syllables (yantai taizhang … yan tai …), and initials trigrams and bigrams (ytz tzy … yt tz …),
  of the name and, when name_texts has it without a bracketed part, of that form too
  (pinyin_items: tongbaixintiaoweipin and tbxtwp find 通百鑫（烟台）调味品);
- a query is split into runs; each run must match (AND): a Chinese run as the phrase of its
  bigrams (so any 2+ character part of a name matches, across word boundaries), a single
  character as a prefix; a latin run as a token, and when it is letters only also as pinyin of
  an entity name: split into syllables every way it can be (yantaizhangyu → yan tai zhang yu;
  xian → xian | xi an; an unfinished last syllable is a prefix: yantaizh), or as initials (ytzy);
- a query that starts with an administrative prefix (山东省, 烟台市, 山东省烟台市 …:
  ADMIN_PREFIX) and finds nothing is searched again without it (ParsedQuery.unprefixed), as
  people type 烟台市芝罘区鸿万兴冷饮店 for 芝罘区鸿万兴冷饮店;
- a query that still finds nothing is searched once more relaxed (relaxed_query): each Chinese
  term without a trailing legal form (品烨热力有限责任公司 for 烟台品烨热力有限公司) and with a
  leading place name as a term of its own (烟台福山区鲁聚酒馆 → 烟台 福山区 鲁聚酒馆); the
  backends say so (SearchResult.relaxed);
- invisible characters (zero-width, bidi controls) are dropped from a query as the import
  drops them from the data (publishing.clean.drop_invisible): 海 U+200B 鲜 is 海鲜;
- the query as a code (USCC / 注册号, any case, spaces and hyphens dropped) is matched exactly
  and as a prefix of 8+ characters by the backends, on a plain index; as a decision number
  (decision_key: 〔2026〕, [2026] and (2026) alike) exactly.

Single characters of a 1-character query are matched as prefixes of the bigrams (and the last
character of each run is a token of its own, so a run's last character is found too).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from publishing.clean import drop_invisible
from publishing.codes import normalize_code
from publishing.contract import DISTRICTS
from publishing.search.pinyin import lazy_pinyin

CJK_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f\u3007"
_RUNS = re.compile(f"([{CJK_CLASS}]+)|([^\\W_{CJK_CLASS}]+)")
_CODE = re.compile(r"[0-9A-Z]{8,18}")
_LETTERS = re.compile(r"[a-z]+")

# Group names of what a phrase is matched against (the backends map them to columns).
TEXT, PINYIN, INITIALS = "text", "py", "pyi"

# The syllables pypinyin's NORMAL style produces (ü as v), without the interjections m, n, hm.
_SYLLABLE_LIST = """
a ai an ang ao ba bai ban bang bao bei ben beng bi bian biao bie bin bing bo bu ca cai can cang
cao ce cen ceng cha chai chan chang chao che chen cheng chi chong chou chu chua chuai chuan
chuang chui chun chuo ci cong cou cu cuan cui cun cuo da dai dan dang dao de den deng di dian
diao die ding diu dong dou du duan dui dun duo e ei en eng er fa fan fang fei fen feng fiao fo
fou fu ga gai gan gang gao ge gei gen geng gong gou gu gua guai guan guang gui gun guo ha hai han
hang hao he hei hen heng hong hou hu hua huai huan huang hui hun huo ji jia jian jiang jiao jie
jin jing jiong jiu ju juan jue jun ka kai kan kang kao ke ken keng kong kou ku kua kuai kuan
kuang kui kun kuo la lai lan lang lao le lei leng li lia lian liang liao lie lin ling liu lo long
lou lu luan lun luo lv lve ma mai man mang mao me mei men meng mi mian miao mie min ming miu mo
mou mu na nai nan nang nao ne nei nen neng ni nian niang niao nie nin ning niu nong nou nu nuan
nun nuo nv nve o ou pa pai pan pang pao pei pen peng pi pian piao pie pin ping po pou pu qi qia
qian qiang qiao qie qin qing qiong qiu qu quan que qun ran rang rao re ren reng ri rong rou ru
rua ruan rui run ruo sa sai san sang sao se sen seng sha shai shan shang shao she shen sheng shi
shou shu shua shuai shuan shuang shui shun shuo si song sou su suan sui sun suo ta tai tan tang
tao te teng ti tian tiao tie ting tong tou tu tuan tui tun tuo wa wai wan wang wei wen weng wo
wu xi xia xian xiang xiao xie xin xing xiong xiu xu xuan xue xun ya yan yang yao ye yi yin ying
yo yong you yu yuan yue yun za zai zan zang zao ze zei zen zeng zha zhai zhan zhang zhao zhe zhen
zheng zhi zhong zhou zhu zhua zhuai zhuan zhuang zhui zhun zhuo zi zong zou zu zuan zui zun zuo
"""
SYLLABLES = frozenset(_SYLLABLE_LIST.split())
_SYLLABLE_PREFIXES = frozenset(s[:i] for s in SYLLABLES for i in range(1, len(s) + 1))
_MAX_SPLITS = 4  # readings of a word as pinyin that a query tries
_MAX_FOUND = 16  # splits of a word found before the fewest-syllables ones are kept
_MAX_PINYIN = 36  # longer letter runs are not read as pinyin (12+ syllables in one word)
MAX_QUERY = 100  # characters of a query that are read
# A longer run of letters/digits is indexed and searched as its first MAX_TOKEN characters:
# PostgreSQL refuses a lexeme over 2,047 bytes (one pasted run stopped every later search sync).
MAX_TOKEN = 64
MAX_TERMS = 12
_MAX_INITIALS = 10  # longer letter runs are not read as initials


# -- normalisation ---------------------------------------------------------------------------


T2S_FILE = Path(__file__).resolve().parent.parent / "data" / "t2s.json"


def _standard_simplified(ch: str) -> bool:
    """Whether a character is itself standard simplified Chinese (in GB 2312): OpenCC's t2s
    still maps some of them (乾→干, 於→于, 甯→宁, 菸→烟 …), which would make 烟台乾坤 read as
    干坤 (and qiankun not find it)."""
    try:
        ch.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def build_t2s_map() -> dict[str, str]:
    """Traditional → simplified for single CJK characters, from OpenCC's t2s (~0.2 s, most of
    it OpenCC loading its dictionaries), except characters that are standard simplified ones
    themselves: publishing/data/t2s.json holds the result (write_t2s_file), so a short CLI run
    does not pay for it (a test keeps the file equal to this)."""
    import opencc

    ranges = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00))
    chars = [chr(c) for lo, hi in ranges for c in range(lo, hi)]
    converted = opencc.OpenCC("t2s").convert("\n".join(chars)).split("\n")
    return {
        a: b
        for a, b in zip(chars, converted, strict=True)
        if a != b and len(b) == 1 and not _standard_simplified(a)
    }


def write_t2s_file() -> None:
    """Regenerate publishing/data/t2s.json (after an OpenCC upgrade or a change of the map)."""
    text = json.dumps(build_t2s_map(), ensure_ascii=False, sort_keys=True, indent=0)
    T2S_FILE.write_text(text + "\n", encoding="utf-8")


@lru_cache(maxsize=1)
def _t2s_map() -> dict[str, str]:
    return json.loads(T2S_FILE.read_text(encoding="utf-8"))


_CHAR_CACHE: dict[str, str] = {}


def _norm_char(ch: str) -> str:
    out = _CHAR_CACHE.get(ch)
    if out is None:
        t2s = _t2s_map()
        nfkc = unicodedata.normalize("NFKC", ch)
        out = "".join(t2s.get(c, c) for c in nfkc).lower()
        _CHAR_CACHE[ch] = out
    return out


def normalize(text: str) -> str:
    """NFKC, traditional → simplified, lower case: '龍口東興ＡＢＣ' → '龙口东兴abc'."""
    if text.isascii():
        return text.lower()
    get = _CHAR_CACHE.get
    return "".join([get(ch) or _norm_char(ch) for ch in text])


def normalize_with_map(text: str) -> tuple[str, list[int]]:
    """normalize(text) and, for each of its characters, the index of the original character."""
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        n = _norm_char(ch)
        out.append(n)
        origin.extend([i] * len(n))
    return "".join(out), origin


def name_key(text: str) -> str:
    """What two names share when they are "the same name": normalised, without spaces and
    punctuation ('烟台市(芝罘区)好运来' and '烟台市芝罘区好运来' have the same key)."""
    return "".join(m.group(0) for m in _RUNS.finditer(normalize(text)))


def former_keys(key: str | None, formers: Iterable[str]) -> list[str]:
    """The name keys of a document's 曾用名 that a query may match as an exact name, each once:
    2+ characters (as an exact name), and not the current name's `key`."""
    keys = dict.fromkeys(name_key(n) for n in formers if n)
    return [k for k in keys if len(k) >= 2 and k != key]


def code_key(text: str) -> str | None:
    """The query as an identification code (USCC / 注册号 or their first 8+ characters)."""
    code = normalize_code(text)
    if _CODE.fullmatch(code) and any(c.isdigit() for c in code):
        return code
    return None


def decision_key(text: str) -> str | None:
    """A decision number (文号) as what its written forms share, its runs of characters and of
    digits: 招市监罚〔2026〕9号, 招市监罚[2026]9号 and 招市监罚（2026） 9号 → '招市监罚 2026 9 号';
    None when the text has no Chinese or no digit (it cannot be a decision number)."""
    parts = runs(normalize(text))
    if not any(cjk for _, cjk in parts) or not any(c.isdigit() for run, _ in parts for c in run):
        return None
    return " ".join(run for run, _ in parts)


# -- index tokens ----------------------------------------------------------------------------


def runs(norm: str) -> list[tuple[str, bool]]:
    """The runs of a normalised text: (run, is_chinese)."""
    return [(m.group(0), m.group(1) is not None) for m in _RUNS.finditer(norm)]


def tokens(norm: str) -> list[str]:
    """Index tokens of a normalised text: Chinese bigrams + each run's last character, words."""
    out: list[str] = []
    for m in _RUNS.finditer(norm):
        cjk = m.group(1)
        if cjk is None:
            out.append(m.group(2)[:MAX_TOKEN])
        else:
            out.extend([cjk[i : i + 2] for i in range(len(cjk) - 1)])
            out.append(cjk[-1])
    return out


def name_text(norm: str) -> str:
    """A normalised name with its Chinese runs that only punctuation or spaces separate joined
    into one (通百鑫（烟台）调味品 → 通百鑫烟台调味品: 通百鑫烟台 finds it, as the bracketed form
    and the pinyin, which never stopped at brackets, do); other runs kept apart (words stay
    words: "xyz tech" is not one word)."""
    out: list[str] = []
    prev_cjk = False
    for run, cjk in runs(norm):
        if out and not (cjk and prev_cjk):
            out.append(" ")
        out.append(run)
        prev_cjk = cjk
    return "".join(out)


# A bracketed part of a normalised name (NFKC made （） and ［］ ASCII, ﹝﹞ 〔〕).
BRACKETED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】|〔[^〔〕]*〕")


def name_texts(norm: str) -> list[str]:
    """What a normalised name is tokenised as (index: tokens() of each): name_text, and, when a
    bracketed part inside the name keeps apart what people type together (通百鑫（烟台）调味品有限
    公司 → 通百鑫调味品), name_text of the name without it. Not when the rest is part of the
    first already (芝罘区…批发部（个体工商户）): the index would only grow."""
    joined = name_text(norm)
    bare = name_text(BRACKETED.sub(" ", norm))
    return [joined, bare] if bare and bare not in joined else [joined]


def chinese_views(norm: str) -> list[tuple[str, list[int]]]:
    """The Chinese of a normalised text as name_texts joins it (runs that only punctuation or
    spaces separate joined; a word keeps them apart; then without its bracketed parts), each
    character with its index in norm (-1 for the word's place): highlighting finds a Chinese
    term in these, so it marks what the index matched (通百鑫调味品 in 通百鑫（烟台）调味品)."""
    blanked = BRACKETED.sub(lambda m: " " * len(m.group(0)), norm)
    return [_chinese_view(t) for t in ((norm, blanked) if blanked != norm else (norm,))]


def _chinese_view(text: str) -> tuple[str, list[int]]:
    chars: list[str] = []
    where: list[int] = []
    for m in _RUNS.finditer(text):
        if m.group(1) is None:
            chars.append(" ")
            where.append(-1)
        else:
            chars.append(m.group(1))
            where.extend(range(m.start(), m.end()))
    return "".join(chars), where


def syllables(norm: str) -> list[str]:
    """The pinyin of a normalised name, one item per Chinese character (words kept)."""
    out: list[str] = []
    for run, cjk in runs(norm):
        out.extend(lazy_pinyin(run) if cjk else [run[:MAX_TOKEN]])
    return out


def pinyin_items(norm: str, texts: list[str] | None = None) -> list[list[str]]:
    """The syllables a normalised name's pinyin and initials are indexed from: the name's, then
    the form without its bracketed part exactly when name_texts (`texts`, if computed already)
    tokenises that form too, as people type it: 通百鑫（烟台）调味品 → tong bai xin yan tai tiao
    wei pin, tong bai xin tiao wei pin. A name without one gets its one list, as before."""
    texts = name_texts(norm) if texts is None else texts
    return [syllables(norm), *(syllables(t) for t in texts[1:])]


def pinyin_grams(items: list[str]) -> list[str]:
    """A name's pinyin as index tokens: joined syllable bigrams, then the syllables.

    烟台樟宇 → yantai taizhang zhangyu yan tai zhang yu. A query of several syllables is the
    phrase of its bigrams (selective tokens, unlike "you" or "xian" of every 有限公司); one
    syllable matches a syllable."""
    return [items[i] + items[i + 1] for i in range(len(items) - 1)] + items


def initial_grams(items: list[str]) -> list[str]:
    """A name's pinyin initials as index tokens: overlapping trigrams, then bigrams.

    烟台樟宇 → y t z y → ytz tzy yt tz zy. Initials queries of 3+ letters are phrases of
    trigrams; two letters are one bigram."""
    s = "".join(i[0] for i in items if i)
    return [s[i : i + 3] for i in range(len(s) - 2)] + [s[i : i + 2] for i in range(len(s) - 1)]


# -- queries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phrase:
    group: str  # TEXT (names and text), PINYIN or INITIALS (entity names only)
    tokens: tuple[str, ...]
    prefix: bool = False  # the last token is a prefix


@dataclass(frozen=True)
class Term:
    """One run of the query; a document matches when one of the alternatives matches."""

    source: str  # the normalised run
    cjk: bool
    alternatives: tuple[Phrase, ...]
    # letters only: the ways to read it as pinyin (syllables, last one unfinished) and whether
    # it may be initials (for highlighting)
    pinyin: tuple[tuple[tuple[str, ...], bool], ...] = ()
    initials: bool = False


@dataclass(frozen=True)
class ParsedQuery:
    raw: str
    terms: tuple[Term, ...]  # all must match
    name_key: str  # for the exact-name match
    code: str | None  # for the code (USCC / 注册号) match, exact or prefix
    decision: str | None = None  # decision_key of the query, for the exact decision-number match
    # the query without its leading administrative prefix: searched when the query finds nothing
    unprefixed: str | None = None

    @property
    def empty(self) -> bool:
        return not self.terms and not self.code


def _splittable(word: str) -> list[bool]:
    """ok[i]: whether word[i:] splits into whole syllables (ok[len(word)] is True)."""
    ok = [False] * len(word) + [True]
    for i in range(len(word) - 1, -1, -1):
        ok[i] = any(
            ok[i + n] and word[i : i + n] in SYLLABLES for n in range(1, min(6, len(word) - i) + 1)
        )
    return ok


def _whole_splits(word: str) -> list[tuple[str, ...]]:
    """The first _MAX_FOUND splits of a word into whole syllables, depth first, longest syllable
    first. Only suffixes that split at all are entered (_splittable), so every step leads to a
    split and the work is bounded: walking every dead end took minutes for 'xian' * 24 + 'q'."""
    ok = _splittable(word)
    found: list[tuple[str, ...]] = []

    def walk(i: int, acc: tuple[str, ...]) -> None:
        if len(found) >= _MAX_FOUND:
            return
        if i == len(word):
            found.append(acc)
            return
        for n in range(min(6, len(word) - i), 0, -1):
            if ok[i + n] and word[i : i + n] in SYLLABLES:
                walk(i + n, (*acc, word[i : i + n]))

    if ok[0]:
        walk(0, ())
    return found


def pinyin_splits(word: str) -> list[tuple[tuple[str, ...], bool]]:
    """Ways to read a letters-only word as pinyin, fewest syllables first: (syllables, prefix).

    'xian' → (xian), (xi an); 'yantaizh' (still typing) → (yan tai zh*). A word longer than
    _MAX_PINYIN letters is not read as pinyin."""
    if len(word) > _MAX_PINYIN:
        return []
    found = _whole_splits(word)
    if found:
        found.sort(key=len)
        return [(s, False) for s in found[:_MAX_SPLITS]]
    partial: list[tuple[str, ...]] = []
    for n in range(min(6, len(word) - 1), 0, -1):  # complete syllables, then an unfinished one
        tail = word[-n:]
        if tail in _SYLLABLE_PREFIXES:
            partial.extend((*s, tail) for s in _whole_splits(word[:-n]))
    partial.sort(key=len)
    return [(s, True) for s in partial[:_MAX_SPLITS]]


def _term(run: str, cjk: bool) -> Term:
    if cjk:
        if len(run) == 1:
            return Term(run, True, (Phrase(TEXT, (run,), prefix=True),))
        bigrams = tuple(run[i : i + 2] for i in range(len(run) - 1))
        return Term(run, True, (Phrase(TEXT, bigrams),))
    run = run[:MAX_TOKEN]  # as tokens() indexed it
    alts = [Phrase(TEXT, (run,))]
    if not _LETTERS.fullmatch(run):
        return Term(run, False, tuple(alts))
    splits = tuple(pinyin_splits(run))
    for sylls, prefix in splits:
        grams = tuple(sylls[i] + sylls[i + 1] for i in range(len(sylls) - 1)) or sylls
        alts.append(Phrase(PINYIN, grams, prefix))
    initials = 2 <= len(run) <= _MAX_INITIALS
    if initials:
        grams = tuple(run[i : i + 3] for i in range(len(run) - 2)) or (run,)
        alts.append(Phrase(INITIALS, grams))
    return Term(run, False, tuple(alts), splits, initials)


def _pinyin_words(words: list[str]) -> Term | None:
    """Several letters-only words ("yantai zhangyu", "qu yuan lu"): one term, read as the pinyin
    of consecutive characters (the spaces are syllable boundaries) or as adjacent words; None
    when a word is not pinyin."""
    combos: list[tuple[tuple[str, ...], bool]] = [((), False)]
    last = len(words) - 1
    for i, word in enumerate(words):
        splits = [s for s in pinyin_splits(word) if not s[1] or i == last]
        if not splits and i == last and word in _SYLLABLE_PREFIXES:
            splits = [((word,), True)]  # still typing: "yantai zh"
        combos = [(a + s, p) for a, _ in combos for s, p in splits][:_MAX_SPLITS]
        if not combos:
            return None
    alts = [Phrase(TEXT, tuple(words))]
    for sylls, prefix in combos:
        alts.append(
            Phrase(PINYIN, tuple(sylls[i] + sylls[i + 1] for i in range(len(sylls) - 1)), prefix)
        )
    return Term("".join(words), False, tuple(alts), tuple(combos))


def parse_query(q: str) -> ParsedQuery:
    q = drop_invisible(q or "")  # as the import cleans the data: 海\u200b鲜 is 海鲜
    norm = normalize(q[:MAX_QUERY])
    parts = runs(norm)[:MAX_TERMS]
    code = code_key(q)
    decision = _decision_query(q)
    return ParsedQuery(
        raw=q,
        terms=_terms(parts),
        name_key="".join(run for run, _ in parts),
        code=code,
        decision=decision,
        unprefixed=None if code or decision else _unprefixed(norm),
    )


def _terms(parts: list[tuple[str, bool]]) -> tuple[Term, ...]:
    """The terms of a query's runs: several letters-only words alone are one (pinyin) term."""
    words = [run for run, cjk in parts if not cjk and _LETTERS.fullmatch(run)]
    joined = _pinyin_words(words) if len(words) >= 2 and len(words) == len(parts) else None
    return (joined,) if joined else tuple(_term(run, cjk) for run, cjk in parts)


# Administrative divisions above the city's that people put before a name (山东省烟台市芝罘区…
# for 芝罘区…; the portal is the city's: every entity is in them). 烟台 alone is not one: it
# begins a good share of the names themselves (烟台樟宇商贸有限公司), so 烟台X… finding nothing
# says more often that X… is not there than that 烟台 is in the way; and 山东 alone begins names
# (山东…集团) too.
ADMIN_PREFIX = re.compile(r"[\W_]*(?:山东省[\W_]*(?:烟台市?)?|烟台市)[\W_]*")
_MIN_UNPREFIXED = 2  # characters of a name left after the prefix: one is anything's part


def _unprefixed(norm: str) -> str | None:
    """The normalised query without its leading administrative prefix; None when it has none or
    too little is left (烟台市场 is not 烟台市 + 场; 山东省烟台市 alone is not a query for all)."""
    m = ADMIN_PREFIX.match(norm)
    if not m:
        return None
    rest = norm[m.end() :]
    return rest if len(name_key(rest)) >= _MIN_UNPREFIXED else None


# A query that is a decision number: a year, then its number and 号 at the end (烟芝市监罚〔2026〕
# 12号). Only then is the decision tag looked up: "芝罘区7天酒店" or "烟台 2026" are plain text,
# and searching them by tag would cost PostgreSQL its fast plan (embedded.run_search).
_DECISION_QUERY = re.compile(r"(?:19|20)\d\d\D+\d+\s*号\s*$")


def _decision_query(q: str) -> str | None:
    q = q[:MAX_QUERY]
    return decision_key(q) if _DECISION_QUERY.search(normalize(q)) else None


# -- the relaxed query -----------------------------------------------------------------------

# Legal forms that people type other than the name has them (有限公司 for 有限责任公司) or add
# to a name that has none (品烨热力公司): a relaxed term goes without one at its end. Longest
# first, so that 有限责任公司 is not read as …有限责任 + 公司.
LEGAL_FORMS = (
    "股份有限公司",
    "有限责任公司",
    "个体工商户",
    "股份公司",
    "有限公司",
    "合伙企业",
    "分公司",
    "公司",
)
_MIN_RELAXED = 2  # characters a relaxed term keeps at least: one is a part of anything
_CJK_ONLY = re.compile(f"[{CJK_CLASS}]+")


def _place_names() -> tuple[str, ...]:
    """The place names a relaxed term splits off its start, longest first: the city's and its
    districts' (publishing.contract.DISTRICTS), a two-character one also without its 市/区/县
    (福山区, 福山)."""
    names = {"烟台市", "烟台"}
    for name in DISTRICTS.values():
        if not _CJK_ONLY.fullmatch(name):
            continue  # 烟台市(市级): no place anyone types
        names.add(name)
        if len(name) == 3 and name[-1] in "市区县":
            names.add(name[:-1])
    return tuple(sorted((normalize(n) for n in names), key=len, reverse=True))


PLACE_NAMES = _place_names()


def _relaxed_run(run: str) -> list[str]:
    """A Chinese run of a query as relaxed terms: without a trailing legal form, its leading
    place names split off (each only where _MIN_RELAXED characters are left after it)."""
    form = next((f for f in LEGAL_FORMS if run.endswith(f)), "")
    if len(run) - len(form) >= _MIN_RELAXED:
        run = run[: len(run) - len(form)]
    out: list[str] = []
    while place := _leading_place(run):
        out.append(place)
        run = run[len(place) :]
    return [*out, run]


def _leading_place(run: str) -> str | None:
    """The longest place name that begins the run, if _MIN_RELAXED characters follow it: 烟台市场
    is not 烟台 + 市场 (烟台市 would leave 场 alone)."""
    place = next((p for p in PLACE_NAMES if run.startswith(p)), None)
    return place if place and len(run) - len(place) >= _MIN_RELAXED else None


def relaxed_query(pq: ParsedQuery) -> ParsedQuery | None:
    """The query searched once when the query (and its unprefixed form) found nothing: each
    Chinese term relaxed (_relaxed_run: 烟台福山区鲁聚酒馆有限公司 → 烟台 福山区 鲁聚酒馆), the
    terms AND-ed as usual; None for a code or decision number, or when nothing would change.
    The one definition both backends use, so that they relax a query alike."""
    if pq.code or pq.decision:
        return None
    parts = runs(pq.unprefixed or normalize(pq.raw[:MAX_QUERY]))[:MAX_TERMS]
    relaxed = [(t, cjk) for run, cjk in parts for t in (_relaxed_run(run) if cjk else [run])]
    if relaxed == parts:
        return None
    relaxed = relaxed[:MAX_TERMS]
    return ParsedQuery(
        raw=pq.raw,
        terms=_terms(relaxed),
        name_key="".join(run for run, _ in relaxed),
        code=None,
    )
