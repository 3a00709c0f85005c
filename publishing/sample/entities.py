"""The entity generator: entity i of a seeded world (type, group, name, codes, representative,
address, phone, which files it appears in) as a pure function of (seed, i), from one keyed
BLAKE2b digest of the index.
"""

from __future__ import annotations

import hashlib

from publishing.contract import DISTRICTS
from publishing.sample.codes import _ALPHABET, _org_check, _reg_no_check, _uscc_check
from publishing.sample.vocab import (
    _ASSOC,
    _CN_NUM,
    _CO_FORMS,
    _CO_WORDS,
    _COOP_FORMS,
    _COOP_PRODUCTS,
    _DISTRICT_TABLE,
    _FACTORY_WORDS,
    _FAMOUS,
    _GIVEN,
    _GOV_DEPTS,
    _GROUPS,
    _INST_KINDS,
    _NPO_KINDS,
    _PENGLAI_AREAS,
    _PLEDGE_GROUP,
    _PLEDGE_WORDS,
    _SHOP_WORDS,
    _SURNAMES,
    _TA,
    _TB,
    _TC,
    _TYPES,
    _VILLAGE_SUFFIX,
    CITY,
    _District,
)

# Digest bytes 0-1 read as a 16-bit flag give an entity at most one of these roles; a role's
# share of entities is its range's length / 65,536.
FOOD_MARK_FLAGS = range(0, 131)  # 0.2 %: a food producer, with a 食品生产 risk grade
SE_MARK_FLAGS = range(131, 164)  # 0.05 %: a special-equipment user, with a 特种设备 grade
PLEDGE_FLAGS = range(164, 905)  # 1.13 %: a shop with a return pledge


class Entity:
    """One market entity; a pure function of (seed, index)."""

    __slots__ = ("i", "uscc", "reg_no", "name", "rep", "district", "address", "group", "word",
                 "category", "food_mark", "se_mark", "pledge", "abnormal", "serious", "phone",
                 "kind", "d")  # fmt: skip

    def row(self) -> list[str]:
        """uscc, reg_no, name, legal_rep, district (full name), address."""
        return [self.uscc or "", self.reg_no or "", self.name, self.rep,
                DISTRICTS[self.district.code], self.address]  # fmt: skip


def _u16(d: bytes, k: int) -> int:
    return d[k] | d[k + 1] << 8


def _person(d: bytes, k: int) -> str:
    """A plausible Chinese personal name from bytes k … k+4."""
    surname = _SURNAMES[_u16(d, k) % len(_SURNAMES)]
    g1 = _GIVEN[d[k + 2] % len(_GIVEN)]
    if d[k + 4] < 70:
        return surname + g1
    return surname + g1 + _GIVEN[d[k + 3] % len(_GIVEN)]


def _trade(d: bytes, k: int, personal: bool) -> str:
    """A 2–3 character trade name (字号) from bytes k … k+6."""
    style = d[k] % 100
    a = _TA[_u16(d, k + 1) % len(_TA)]
    b = _TB[_u16(d, k + 3) % len(_TB)]
    if style < 42:
        return a + b
    if style < 88:
        return a + b + _TC[d[k + 5] % len(_TC)]
    surname = _SURNAMES[_u16(d, k + 3) % len(_SURNAMES)]
    if style < 95:
        if personal:
            return surname + ("记", "家", "姐", "哥", "氏", "嫂")[d[k + 5] % 6]
        return surname + "氏" + b
    if style < 98 and personal:
        return surname + _GIVEN[d[k + 5] % len(_GIVEN)] + _GIVEN[d[k + 1] % len(_GIVEN)]
    return _FAMOUS[d[k + 5] % len(_FAMOUS)] + (a if d[k + 6] < 128 else "")


def _village(d: bytes, k: int) -> str:
    return _SURNAMES[_u16(d, k) % len(_SURNAMES)] + _VILLAGE_SUFFIX[d[k + 2] % 8]


def _address(dist: _District, d: bytes, k: int) -> str:
    """烟台市芝罘区南大街123号-style business address from bytes k … k+7."""
    if dist.county and d[k] < 90:
        town = dist.towns[d[k + 1] % len(dist.towns)]
        base = f"{dist.addr}{town}{_village(d, k + 2)}"
        return base + (f"{d[k + 5] % 199 + 1}号" if d[k + 6] < 150 else "")
    road = dist.roads[_u16(d, k + 1) % len(dist.roads)]
    n = d[k + 3] % 160 + 1 if d[k + 4] < 200 else _u16(d, k + 3) % 900 + 1
    base = f"{dist.addr}{road}{n}号"
    if d[k] >= 240:
        base = "山东省" + base
    s = d[k + 6]
    if s < 150:
        return base
    m = d[k + 7] % 30 + 1
    if s < 170:
        return f"{base}附{m}号"
    if s < 200:
        return f"{base}{m}号商铺"
    if s < 225:
        return f"{base}{m % 20 + 1}号楼{m * 7 % 30 + 101}室"
    return f"{base}内{m}号"


class _Entities:
    """Entity i of a seeded world, computed on demand."""

    def __init__(self, seed: int, count: int) -> None:
        self.count = count
        self._key = hashlib.blake2b(f"disclosure-sample:{seed}".encode(), digest_size=32).digest()
        mix = int.from_bytes(self._key[:8], "little")
        # Index permutations (multiplier coprime with the modulus): unique codes per entity.
        self._ma_off = mix % (3 * 31**5)
        self._num_off = (mix >> 20) % 10**8
        self._reg_off = (mix >> 30) % 10**7

    def digest(self, i: int) -> bytes:
        return hashlib.blake2b(i.to_bytes(8, "little"), key=self._key, digest_size=64).digest()

    def __call__(self, i: int) -> Entity:
        d = self.digest(i)
        e = Entity()
        e.i, e.d = i, d
        flag = _u16(d, 0)
        e.food_mark = flag in FOOD_MARK_FLAGS
        e.se_mark = flag in SE_MARK_FLAGS
        e.pledge = flag in PLEDGE_FLAGS
        e.serious = _u16(d, 4) < 66  # 0.1 %
        old_reg = _u16(d, 6) < 655  # 1 %: an old individual business with only a 注册号
        prefix, kind = _TYPES[_u16(d, 8) % 10000]
        dist = _DISTRICT_TABLE[_u16(d, 10) % 4096]
        category = None
        if e.food_mark:
            prefix, kind, group = ("91", "co" if d[12] < 190 else "fa", "food_prod")
        elif e.se_mark:
            prefix, kind, group = ("91", "co", "special_eq")
        elif e.pledge:
            kind = "co" if d[12] < 115 or dist is CITY else "ind"
            prefix = "91" if kind == "co" else "92"
            word, category = _PLEDGE_WORDS[kind if kind == "co" else "shop"][
                d[13] % len(_PLEDGE_WORDS["co" if kind == "co" else "shop"])
            ]
            group = _PLEDGE_GROUP.get(word, "retail")
        elif old_reg:
            prefix, kind = ("92", "ind")
            group = _GROUPS["ind"][_u16(d, 14) % 1000]
        elif kind in _GROUPS:
            group = _GROUPS[kind][_u16(d, 14) % 1000]
        else:
            group = "agri" if kind in ("coop", "village") else "public"
        if dist is CITY and kind == "ind":
            prefix, kind = "91", "co"  # individual businesses register in the districts
        e.abnormal = _u16(d, 2) < 3400 and group != "public"  # ≈ 5 %
        e.group, e.kind, e.district = group, kind, dist
        area = _PENGLAI_AREAS[d[49] % 20] if dist.code == "370614" else dist.code
        historical = area != dist.code
        place = "蓬莱市" if historical and d[12] & 1 else None  # older names keep 蓬莱市

        # -- name
        if kind == "co":
            if not e.pledge:
                word = _CO_WORDS[group][_u16(d, 16) % len(_CO_WORDS[group])]
            trade = _trade(d, 20, False)
            form = _CO_FORMS[d[27] % 100]
            if (
                word in ("大酒店", "海鲜酒楼", "商场", "购物中心", "超市")
                and form == "集团有限公司"
            ):
                form = "有限公司"
            p = d[28] % 100
            if p < 30:
                name = f"烟台{trade}{word}{form}"
            elif p < 40:
                name = f"烟台市{trade}{word}{form}"
            elif p < 75:
                name = f"{place or dist.co}{trade}{word}{form}"
            elif p < 95:
                name = f"山东{trade}{word}{form}"
            else:
                name = f"{trade}（烟台）{word}{form}"
        elif kind == "ind":
            if not e.pledge:
                word = _SHOP_WORDS[group][_u16(d, 16) % len(_SHOP_WORDS[group])]
            trade = _trade(d, 20, True)
            name = f"{place or dist.ind}{trade}{word}"
            tail = d[28] % 100
            if tail < 35:
                name += "(个体工商户)" if tail < 28 else "（个体工商户）"
        elif kind == "fa":
            word = _FACTORY_WORDS[group][_u16(d, 16) % len(_FACTORY_WORDS[group])]
            trade = _trade(d, 20, False)
            name = f"{place or dist.co}{trade}{word}"
        elif kind == "br":
            word = _CO_WORDS[group][_u16(d, 16) % len(_CO_WORDS[group])]
            trade = _trade(d, 20, False)
            parent = f"烟台{trade}{word}{_CO_FORMS[d[27] % 100]}"
            b = d[28] % 10
            if b < 4:
                name = f"{parent}{dist.branch}分公司"
            elif b < 7:
                name = f"{parent}{dist.roads[d[29] % len(dist.roads)]}店"
            else:
                name = f"{parent}第{_CN_NUM[d[29] % len(_CN_NUM)]}分店"
        elif kind == "coop":
            trade = _trade(d, 20, False)
            name = (f"{place or dist.ind}{trade}{_COOP_PRODUCTS[d[16] % len(_COOP_PRODUCTS)]}"
                    f"{_COOP_FORMS[d[17] % len(_COOP_FORMS)]}")  # fmt: skip
        elif kind == "village":
            town = dist.towns[d[16] % len(dist.towns)]
            name = f"{place or dist.ind}{town}{_village(d, 17)}股份经济合作社"
        elif kind == "inst":
            town = dist.towns[d[16] % len(dist.towns)]
            name = f"{dist.co}{town}{_village(d, 17)[:-1]}{_INST_KINDS[d[20] % len(_INST_KINDS)]}"
        elif kind == "gov":
            name = f"{dist.co}{_GOV_DEPTS[d[16] % len(_GOV_DEPTS)]}"
        elif kind == "npo":
            trade = _trade(d, 20, False)
            name = f"{dist.co}{trade}{_NPO_KINDS[d[16] % len(_NPO_KINDS)]}"
        elif kind == "assoc":
            name = f"{dist.co}{_ASSOC[d[16] % len(_ASSOC)]}"
        elif kind == "other":
            name = f"{dist.co}{_trade(d, 20, False)}市场管理服务中心"
        else:  # army
            name = f"烟台{_trade(d, 20, False)}招待所"
        e.name = name
        e.word = word if kind in ("co", "ind", "fa", "br") else None
        e.category = category

        # -- codes
        if old_reg:
            seq = (i * 7_654_321 + self._reg_off) % 10**7
            first = f"{'370684' if dist.code == '370614' else area}{6 + d[18] % 4}{seq:07d}"
            e.reg_no, e.uscc = first + _reg_no_check(first), None
        else:
            if d[19] < 170 and prefix[0] == "9":  # newer: MA + 6, then the GB 11714 check
                k = (i * 1_000_003 + self._ma_off) % (3 * 31**5)
                k, lead = divmod(k, 3)
                body = "MA" + "39C"[lead]
                for _ in range(5):
                    k, r = divmod(k, 31)
                    body += _ALPHABET[r]
            else:  # an old 8-digit organisation code
                body = f"{(i * 73_939_133 + self._num_off) % 10**8:08d}"
            first17 = prefix + area + body + _org_check(body)
            e.uscc, e.reg_no = first17 + _uscc_check(first17), None

        e.rep = _person(d, 30)
        e.address = _address(dist, d, 35)
        if d[43] < 170:
            e.phone = f"1{'35789'[d[44] % 5]}{_u16(d, 45) % 10}{_u16(d, 47) * 1531 % 10**8:08d}"
        else:
            e.phone = f"0535-{'623586'[d[44] % 6]}{_u16(d, 45) * 37 % 10**6:06d}"
        return e
