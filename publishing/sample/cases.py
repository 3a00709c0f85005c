"""Penalty case templates: per industry group, weighted templates that write one penalty's
domain, violation type, facts, legal basis, kinds and amounts from a random stream, and the
joining of fact sentences (with any PII) into the 主要违法事实 text.
"""

from __future__ import annotations

import random

from publishing.sample.entities import Entity
from publishing.sample.formats import _yuan
from publishing.sample.vocab import _table

_PEST = "GB 2763-2021《食品中农药最大残留限量》"
_VET = "GB 31650-2019《食品中兽药最大残留限量》"
_BAN = "农业农村部公告第250号"
_ADD = "GB 2760-2014《食品添加剂使用标准》"
_CONT = "GB 2762-2022《食品中污染物限量》"
_MYCO = "GB 2761-2017《食品中真菌毒素限量》"
_OIL = "GB 2716-2018《植物油》"
_CAKE = "GB 7099-2015《糕点、面包》"
_WARE = "GB 14934-2016《消毒餐（饮）具》"
_LIQ = "GB 2757-2012《蒸馏酒及其配制酒》"
_MEAT = "GB 2726-2016《熟肉制品》"
_SPROUT = "总局等三部门2015年第11号公告"
# (product, failed item, standard, unit, price per unit in cents (lo, hi), sort)
# sort: a = 食用农产品, f = 预包装/散装食品, c = 餐饮自制
Product = tuple[str, str, str, str, int, int, str]
_PRODUCTS: tuple[Product, ...] = (
    ("韭菜", "腐霉利", _PEST, "公斤", 400, 1200, "a"),
    ("韭菜", "毒死蜱", _PEST, "公斤", 400, 1200, "a"),
    ("芹菜", "毒死蜱", _PEST, "公斤", 300, 900, "a"),
    ("豇豆", "灭蝇胺", _PEST, "公斤", 600, 1600, "a"),
    ("豇豆", "噻虫胺", _PEST, "公斤", 600, 1600, "a"),
    ("生姜", "噻虫胺", _PEST, "公斤", 800, 1800, "a"),
    ("鸡蛋", "氟苯尼考", _VET, "公斤", 700, 1300, "a"),
    ("鸡蛋", "恩诺沙星", _VET, "公斤", 700, 1300, "a"),
    ("猪肉", "磺胺类(总量)", _VET, "公斤", 2200, 3600, "a"),
    ("牛肉", "地塞米松", _VET, "公斤", 6000, 9000, "a"),
    ("羊肉", "克伦特罗", _BAN, "公斤", 6000, 9000, "a"),
    ("鸡肉", "恩诺沙星", _VET, "公斤", 1400, 2400, "a"),
    ("对虾", "呋喃西林代谢物", _BAN, "公斤", 5000, 12000, "a"),
    ("鲈鱼", "恩诺沙星", _VET, "公斤", 3000, 6000, "a"),
    ("多宝鱼", "恩诺沙星", _VET, "公斤", 4000, 8000, "a"),
    ("鲫鱼", "孔雀石绿", _BAN, "公斤", 1600, 3000, "a"),
    ("大米", "镉(以Cd计)", _CONT, "公斤", 500, 900, "a"),
    ("绿豆芽", "6-苄基腺嘌呤", _SPROUT, "公斤", 300, 700, "a"),
    ("散装白酒", "甜蜜素", _ADD, "斤", 1000, 4000, "f"),
    ("散装白酒", "甲醇", _LIQ, "斤", 1000, 4000, "f"),
    ("粉丝", "铝的残留量", _ADD, "公斤", 1200, 2400, "f"),
    ("花生油", "酸价(KOH)", _OIL, "桶", 9000, 16000, "f"),
    ("花生油", "黄曲霉毒素B1", _MYCO, "桶", 9000, 16000, "f"),
    ("糕点", "菌落总数", _CAKE, "公斤", 1600, 4000, "f"),
    ("面包", "霉菌", _CAKE, "个", 300, 900, "f"),
    ("葡萄酒", "甜蜜素", _ADD, "瓶", 3000, 12000, "f"),
    ("腌制蔬菜", "苯甲酸及其钠盐", _ADD, "公斤", 800, 2000, "f"),
    ("小麦粉", "脱氧雪腐镰刀菌烯醇", _MYCO, "袋", 3000, 6000, "f"),
    ("油条", "铝的残留量", _ADD, "公斤", 1200, 2000, "c"),
    ("馒头", "甜蜜素", _ADD, "公斤", 600, 1200, "c"),
    ("酱卤肉", "菌落总数", _MEAT, "公斤", 4000, 8000, "c"),
    ("复用餐饮具", "大肠菌群", _WARE, "套", 100, 300, "c"),
    ("复用餐饮具", "阴离子合成洗涤剂", _WARE, "套", 100, 300, "c"),
)
_BLACKLIST_PRODUCTS = tuple(p for p in _PRODUCTS if p[0] != "复用餐饮具")
_PREPACKED = ("牛奶", "面包", "火腿肠", "方便面", "饮料", "饼干", "酱油", "食醋", "月饼", "酸奶",
              "速冻水饺", "调制乳粉", "果冻", "辣条", "薯片")  # fmt: skip
_SAMPLERS = ("烟台市市场监督管理局", "山东省市场监督管理局")
_LABS = ("烟台市食品药品检验检测中心", "山东省食品药品检验研究院", "青岛市产品质量检验研究院",
         "烟台市产品质量监督检验所")  # fmt: skip
_DEVICES = ("曳引驱动乘客电梯", "乘客电梯", "载货电梯", "燃气热水锅炉", "储气罐", "叉车",
            "桥式起重机", "液化石油气钢瓶", "自动扶梯")  # fmt: skip
_BAD_GOODS = (("电线电缆", "导体电阻", "米"), ("电动自行车乘员头盔", "吸收碰撞能量性能", "个"),
              ("燃气灶具", "熄火保护装置", "台"), ("复合肥料", "总养分", "袋"),
              ("儿童服装", "纤维含量", "件"), ("转换器", "插头插座结构", "个"),
              ("车用尿素溶液", "尿素含量", "桶"), ("LED灯具", "防触电保护", "个"),
              ("学生文具", "可迁移元素", "盒"), ("保温杯", "保温效能", "个"))  # fmt: skip
_FAKE_GOODS = (("运动鞋", "双"), ("白酒", "瓶"), ("洗发水", "瓶"), ("轮胎", "条"), ("手提包", "个"),
               ("润滑油", "桶"), ("汽车配件", "件"), ("服装", "件"), ("香水", "瓶"))  # fmt: skip
_DRUGS = ("阿莫西林胶囊", "头孢克肟分散片", "布洛芬缓释胶囊", "复方甘草片", "罗红霉素片",
          "左氧氟沙星片", "氨咖黄敏胶囊", "感冒灵颗粒")  # fmt: skip
_ABSOLUTE = ("最好", "最佳", "第一品牌", "国家级", "顶级", "最低价", "销量第一", "全网最低")
_FOOD_LAW = "《中华人民共和国食品安全法》"


class Case:
    """One penalty's content, built by a template."""

    __slots__ = ("domain", "vtype", "facts", "basis", "kinds", "fine", "gain", "product",
                 "summary")  # fmt: skip

    def __init__(self, domain: str, vtype: str, facts: list[str], basis: str, kinds: str,
                 fine: int | None = None, gain: int | None = None, product: str | None = None,
                 summary: str | None = None) -> None:  # fmt: skip
        self.domain, self.vtype, self.facts, self.basis = domain, vtype, facts, basis
        self.kinds, self.fine, self.gain, self.product = kinds, fine, gain, product
        self.summary = summary or vtype


def _fine(
    r: random.Random,
    sev: str,
    light: tuple[int, int, int],
    normal: tuple[int, int, int],
    grave: tuple[int, int, int],
) -> int:
    lo, hi, step = light if sev == "轻微" else grave if sev == "严重" else normal
    return r.randrange(lo, hi + 1, step)


def _kinds(*names: str) -> str:
    return ";".join(n for n in names if n)


def _t_sampling(
    r: random.Random, e: Entity, sev: str, found: str, org: str, product: Product | None = None
) -> Case:
    p = product or r.choice(_PRODUCTS if e.group != "food_prod" else _BLACKLIST_PRODUCTS)
    name, item, std, unit, lo, hi, sort = p
    qty = r.randint(3, 80)
    price = r.randint(lo, hi)
    value = qty * price
    sold = r.randint(1, qty)
    gain = sold * (price - price * r.randint(60, 90) // 100)
    verb = "生产" if e.group == "food_prod" and sort != "a" else "经营"
    s1 = (f"{found}，{org}对当事人{verb}的{name}进行抽样检验，经{r.choice(_LABS)}检验，{item}"
          f"项目不符合{std}要求，检验结论为不合格。")  # fmt: skip
    s2 = (f"经查，当事人购进该批次{name}{qty}{unit}，货值金额{_yuan(value)}元，已售出{sold}{unit}，"
          f"违法所得{_yuan(gain)}元。")  # fmt: skip
    s3 = "当事人积极配合调查，已下架封存剩余产品。"
    if sort == "a":
        vtype = "销售不符合食品安全标准的食用农产品"
    elif verb == "生产":
        vtype = "生产不符合食品安全标准的食品"
    else:
        vtype = "经营不符合食品安全标准的食品"
    clause = "第（三）项" if std == _ADD else "第（一）项"
    basis = f"{_FOOD_LAW}第一百二十四条第一款{clause}"
    if sev == "轻微":
        basis += "、第一百三十六条"
        kinds = _kinds("没收违法所得")
        fine = None
    else:
        kinds = _kinds(
            "罚款", "没收违法所得", "吊销许可证件" if sev == "严重" and r.random() < 0.08 else ""
        )
        fine = _fine(r, sev, (0, 0, 1), (10000, 50000, 1000), (50000, 150000, 5000))
    summary = f"{verb}的{name}经抽样检验，{item}项目不符合食品安全标准"
    return Case("食品", vtype, [s1, s2, s3], basis, kinds, fine, gain, name, summary)


def _t_expired(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    name = r.choice(_PREPACKED)
    qty = r.randint(2, 40)
    value = qty * r.randint(300, 3000)
    s1 = (f"{found}，执法人员对当事人经营场所进行检查，发现货架上摆放待售的{name}{qty}件已超过保质期，"
          f"货值金额{_yuan(value)}元。")  # fmt: skip
    s2 = "当事人未能提供定期检查库存食品的记录。"
    fine = _fine(r, sev, (0, 0, 1), (5000, 50000, 1000), (50000, 100000, 5000))
    kinds = _kinds("警告") if sev == "轻微" else _kinds("罚款", "没收违法所得")
    gain = None if sev == "轻微" else r.randint(value // 20 + 1, value // 4 + 1)
    return Case(
        "食品",
        "经营超过保质期的食品",
        [s1, s2],
        f"{_FOOD_LAW}第一百二十四条第一款第（五）项",
        kinds,
        fine or None,
        gain,
        name,
    )


def _t_label(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    name = r.choice(_PREPACKED)
    s1 = (f"{found}，执法人员检查发现当事人经营的{name}标签未标注生产日期、生产者名称及地址，"
          f"属于经营无标签的预包装食品，共计{r.randint(5, 60)}件。")  # fmt: skip
    fine = _fine(r, sev, (0, 0, 1), (5000, 20000, 500), (20000, 50000, 1000))
    kinds = _kinds("警告") if sev == "轻微" else _kinds("罚款", "没收违法所得")
    return Case(
        "食品",
        "经营无标签的预包装食品",
        [s1, "当事人已将上述食品全部下架。"],
        f"{_FOOD_LAW}第一百二十五条第一款第（二）项",
        kinds,
        fine or None,
        None if sev == "轻微" else r.randint(1000, 30000),
        name,
    )


def _t_records(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    s1 = (f"{found}，执法人员对当事人进行检查，发现其未按规定建立并遵守进货查验记录制度，"
          f"无法提供所售{r.choice(_PREPACKED)}等食品的供货者许可证和产品合格证明文件。")  # fmt: skip
    s2 = "执法人员曾责令当事人限期改正，复查时当事人仍未改正。"
    if sev == "轻微":
        return Case(
            "食品",
            "未按规定建立并遵守进货查验记录制度",
            [s1],
            f"{_FOOD_LAW}第一百二十六条第一款第（三）项",
            _kinds("警告"),
        )
    fine = _fine(r, sev, (0, 0, 1), (5000, 20000, 500), (20000, 50000, 1000))
    return Case(
        "食品",
        "未按规定建立并遵守进货查验记录制度",
        [s1, s2],
        f"{_FOOD_LAW}第一百二十六条第一款第（三）项",
        _kinds("罚款"),
        fine,
    )


def _t_tableware(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    s1 = (f"{found}，执法人员检查发现当事人后厨消毒柜未通电使用，已使用的餐具、饮具未经洗净消毒"
          f"即重复使用，现场共有未消毒餐具{r.randint(10, 80)}套。")  # fmt: skip
    if sev == "轻微":
        return Case(
            "食品",
            "餐具、饮具未按规定洗净消毒",
            [s1],
            f"{_FOOD_LAW}第一百二十六条第一款第（五）项",
            _kinds("警告"),
        )
    fine = _fine(r, sev, (0, 0, 1), (5000, 20000, 500), (20000, 50000, 1000))
    return Case(
        "食品",
        "餐具、饮具未按规定洗净消毒",
        [s1, "经责令改正后当事人拒不改正。"],
        f"{_FOOD_LAW}第一百二十六条第一款第（五）项",
        _kinds("警告", "罚款"),
        fine,
    )


def _t_health(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    s1 = (f"{found}，执法人员检查发现当事人安排{r.randint(1, 4)}名未取得健康证明的人员从事"
          f"接触直接入口食品的工作。")  # fmt: skip
    if sev == "轻微":
        return Case(
            "食品",
            "安排未取得健康证明的人员从事接触直接入口食品的工作",
            [s1],
            f"{_FOOD_LAW}第一百二十六条第一款第（六）项",
            _kinds("警告"),
        )
    fine = _fine(r, sev, (0, 0, 1), (5000, 10000, 500), (10000, 50000, 1000))
    return Case(
        "食品",
        "安排未取得健康证明的人员从事接触直接入口食品的工作",
        [s1, "当事人曾因同一违法行为被责令改正。"],
        f"{_FOOD_LAW}第一百二十六条第一款第（六）项",
        _kinds("罚款"),
        fine,
    )


def _t_unlicensed(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    value = r.randint(20000, 900000)
    gain = r.randint(5000, max(5001, value // 3))
    s1 = (f"经查，当事人自{found}起未取得食品经营许可从事食品经营活动，经营{r.choice(_PREPACKED)}"
          f"等食品，货值金额{_yuan(value)}元，违法所得{_yuan(gain)}元。")  # fmt: skip
    fine = _fine(r, sev, (5000, 20000, 1000), (50000, 100000, 5000), (100000, 150000, 10000))
    return Case(
        "食品",
        "未取得食品经营许可从事食品经营活动",
        [s1, "当事人已于案发后申请办理许可。"],
        f"{_FOOD_LAW}第一百二十二条第一款",
        _kinds("罚款", "没收违法所得"),
        fine,
        gain,
    )


def _t_factory_test(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    name = r.choice(
        ("粉丝", "糕点", "饮料", "速冻水饺", "海参制品", "葡萄酒", "酱卤肉制品", "面粉")
    )
    s1 = (f"{found}，执法人员对当事人进行检查，发现其生产的{r.randint(2, 20)}个批次{name}"
          f"未按规定进行出厂检验即销售，不能提供出厂检验记录。")  # fmt: skip
    fine = _fine(r, sev, (0, 0, 1), (5000, 30000, 1000), (30000, 50000, 1000))
    kinds = _kinds("警告") if sev == "轻微" else _kinds("警告", "罚款")
    return Case(
        "食品",
        "未按规定对生产的食品进行出厂检验",
        [s1],
        f"{_FOOD_LAW}第一百二十六条第一款第（一）项",
        kinds,
        fine or None,
        None,
        name,
    )


def _t_rx(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    s1 = (f"{found}，执法人员检查发现当事人在执业药师不在岗的情况下，未凭处方销售处方药"
          f"{r.choice(_DRUGS)}{r.randint(1, 10)}盒。")  # fmt: skip
    fine = _fine(r, sev, (0, 0, 1), (1000, 10000, 500), (10000, 30000, 1000))
    kinds = _kinds("警告") if sev == "轻微" else _kinds("警告", "罚款")
    return Case(
        "药品",
        "未凭处方销售处方药",
        [s1, "当事人已改正。"],
        "《药品经营和使用质量监督管理办法》第六十八条第（三）项",
        kinds,
        fine or None,
    )


def _t_drug_expired(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    value = r.randint(2000, 50000)
    s1 = (f"{found}，执法人员检查发现当事人货架上陈列待售的{r.choice(_DRUGS)}已超过有效期，"
          f"货值金额{_yuan(value)}元，按劣药论处。")  # fmt: skip
    fine = _fine(r, sev, (5000, 20000, 1000), (20000, 100000, 5000), (100000, 200000, 10000))
    return Case(
        "药品",
        "销售超过有效期的药品",
        [s1, "当事人积极配合调查，主动消除违法行为危害后果。"],
        "《中华人民共和国药品管理法》第九十八条第三款第（五）项、第一百一十七条第一款",
        _kinds("罚款", "没收违法所得"),
        fine,
        r.randint(value // 20 + 1, value // 5 + 1),
    )


def _t_gsp(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    s1 = (f"{found}，执法人员检查发现当事人阴凉区温度达{r.randint(22, 31)}℃，未按药品储存要求"
          f"采取控温措施，且未按规定记录温湿度。")  # fmt: skip
    fine = _fine(r, sev, (0, 0, 1), (10000, 50000, 5000), (100000, 200000, 10000))
    kinds = _kinds("警告") if sev == "轻微" else _kinds("警告", "罚款")
    return Case(
        "药品",
        "未遵守药品经营质量管理规范",
        [s1, "经责令限期改正，逾期未改正。"],
        "《中华人民共和国药品管理法》第一百二十六条",
        kinds,
        fine or None,
    )


def _t_device(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    item = r.choice(("医用口罩", "血糖试纸", "电子血压计", "避孕套", "一次性使用无菌注射器"))
    s1 = f"{found}，执法人员检查发现当事人经营的{item}未建立进货查验记录，无法提供供货者资质证明。"
    fine = _fine(r, sev, (0, 0, 1), (10000, 30000, 1000), (30000, 100000, 5000))
    kinds = _kinds("警告") if sev == "轻微" else _kinds("罚款")
    return Case(
        "医疗器械",
        "未按规定建立并执行医疗器械进货查验记录制度",
        [s1],
        "《医疗器械监督管理条例》第八十九条第（三）项",
        kinds,
        fine or None,
    )


def _t_cosmetic(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    s1 = (f"{found}，执法人员检查发现当事人经营的{r.randint(2, 30)}支化妆品已超过使用期限，"
          f"仍陈列于货架销售。")  # fmt: skip
    fine = _fine(r, sev, (0, 0, 1), (10000, 30000, 1000), (30000, 50000, 1000))
    kinds = _kinds("警告") if sev == "轻微" else _kinds("罚款", "没收违法所得")
    gain = None if sev == "轻微" else r.randint(500, 20000)
    return Case(
        "化妆品",
        "经营超过使用期限的化妆品",
        [s1],
        "《化妆品监督管理条例》第六十条第（四）项",
        kinds,
        fine or None,
        gain,
    )


def _t_se_inspection(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    dev = r.choice(_DEVICES)
    due = r.randint(1, 12)
    s1 = (f"{found}，执法人员检查发现当事人使用的{dev}（使用登记证编号：梯11鲁F{r.randint(10000, 99999)}）"
          f"已超过定期检验有效期{due}个月，当事人未按规定提出定期检验要求，仍继续使用。")  # fmt: skip
    fine = _fine(r, sev, (10000, 20000, 1000), (30000, 50000, 1000), (50000, 300000, 10000))
    kinds = _kinds("罚款", "责令停产停业" if sev == "严重" and r.random() < 0.3 else "")
    return Case(
        "特种设备",
        "使用未经定期检验的特种设备",
        [s1, "当事人已停止使用并申报检验。"],
        "《中华人民共和国特种设备安全法》第八十四条第（一）项",
        kinds,
        fine,
    )


def _t_se_register(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    dev = r.choice(_DEVICES)
    s1 = f"{found}，执法人员检查发现当事人使用的{r.randint(1, 5)}台{dev}未办理使用登记即投入使用。"
    fine = _fine(r, sev, (10000, 20000, 1000), (10000, 50000, 1000), (50000, 100000, 5000))
    return Case(
        "特种设备",
        "特种设备使用单位未按规定办理使用登记",
        [s1, "当事人已补办使用登记。"],
        "《中华人民共和国特种设备安全法》第八十三条第（一）项",
        _kinds("罚款"),
        fine,
    )


def _t_se_operator(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    dev = r.choice(("叉车", "桥式起重机", "锅炉", "电梯"))
    s1 = f"{found}，执法人员检查发现当事人安排未取得特种设备安全管理和作业人员证的人员操作{dev}。"
    fine = _fine(r, sev, (10000, 10000, 1), (10000, 30000, 1000), (30000, 50000, 1000))
    return Case(
        "特种设备",
        "违规使用无证特种设备作业人员",
        [s1],
        "《中华人民共和国特种设备安全法》第八十六条第（二）项",
        _kinds("罚款"),
        fine,
    )


def _t_price_tag(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    s1 = (f"{found}，执法人员检查发现当事人经营场所内{r.randint(5, 60)}种商品未按规定明码标价，"
          f"且部分价签信息不全。")  # fmt: skip
    fine = _fine(r, sev, (0, 0, 1), (500, 3000, 100), (3000, 5000, 100))
    kinds = _kinds("警告") if sev == "轻微" else _kinds("警告", "罚款")
    return Case(
        "价格",
        "不按规定明码标价",
        [s1],
        "《中华人民共和国价格法》第四十二条、《明码标价和禁止价格欺诈规定》第二十一条",
        kinds,
        fine or None,
    )


def _t_price_fraud(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    gain = r.randint(5000, 300000)
    s1 = (f"经查，当事人在促销活动中以虚构的“原价”标示商品价格，进行价格比较，诱骗消费者购买，"
          f"违法所得{_yuan(gain)}元。")  # fmt: skip
    fine = _fine(r, sev, (2000, 5000, 500), (5000, 50000, 1000), (50000, 200000, 10000))
    return Case(
        "价格",
        "利用虚假的或者使人误解的价格手段诱骗消费者",
        [s1],
        "《中华人民共和国价格法》第十四条第（四）项、第四十条",
        _kinds("罚款", "没收违法所得"),
        fine,
        gain,
    )


def _t_ad_absolute(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    s1 = (f"经查，当事人自{found}起在其经营场所及微信公众号发布的广告中使用“{r.choice(_ABSOLUTE)}”"
          f"等绝对化用语，广告费用无法计算。")  # fmt: skip
    fine = _fine(r, sev, (1000, 3000, 500), (3000, 30000, 1000), (200000, 300000, 10000))
    return Case(
        "广告",
        "发布含有绝对化用语的广告",
        [s1, "当事人已删除相关广告内容。"],
        "《中华人民共和国广告法》第九条第（三）项、第五十七条第（一）项",
        _kinds("罚款"),
        fine,
    )


def _t_ad_false(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    cost = r.randint(50000, 1000000)
    s1 = (f"经查，当事人在其宣传单页中宣称普通食品具有“降血糖”“调节免疫力”等功效，"
          f"属于发布虚假广告，广告费用{_yuan(cost)}元。")  # fmt: skip
    fine = (cost // 100) * (1 if sev == "轻微" else 3 if sev == "一般" else 5)
    return Case(
        "广告",
        "发布虚假广告",
        [s1],
        "《中华人民共和国广告法》第二十八条、第五十五条第一款",
        _kinds("罚款"),
        fine,
    )


def _t_bad_goods(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    name, item, unit = r.choice(_BAD_GOODS)
    qty = r.randint(5, 400)
    value = qty * r.randint(500, 20000)
    gain = r.randint(0, value // 5)
    s1 = (f"{found}，经监督抽查，当事人销售的{name}{item}项目不合格。经查，当事人共购进该批次"
          f"{name}{qty}{unit}，货值金额{_yuan(value)}元，违法所得{_yuan(gain)}元。")  # fmt: skip
    mult = {"轻微": 1, "一般": 2, "严重": 3}[sev]
    fine = max(100, value * mult // 100 // 100 * 100)
    return Case(
        "产品质量",
        "销售不合格产品",
        [s1],
        "《中华人民共和国产品质量法》第三十九条、第四十九条",
        _kinds("罚款", "没收违法所得" if gain else ""),
        fine,
        gain or None,
    )


def _t_marking(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    name = r.choice(_BAD_GOODS)[0]
    s1 = f"{found}，执法人员检查发现当事人销售的{name}无中文标明的产品名称、生产厂厂名和厂址。"
    fine = _fine(r, sev, (0, 0, 1), (500, 5000, 100), (5000, 20000, 500))
    kinds = _kinds("警告") if sev == "轻微" else _kinds("罚款")
    return Case(
        "产品质量",
        "销售标识不符合规定的产品",
        [s1],
        "《中华人民共和国产品质量法》第二十七条、第五十四条",
        kinds,
        fine or None,
    )


def _t_trademark(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    name, unit = r.choice(_FAKE_GOODS)
    qty = r.randint(3, 200)
    turnover = qty * r.randint(2000, 30000)
    s1 = (f"{found}，执法人员在当事人经营场所查获标注他人注册商标的{name}{qty}{unit}，经商标注册人"
          f"鉴定均为侵犯注册商标专用权的商品，违法经营额{_yuan(turnover)}元。")  # fmt: skip
    fine = _fine(r, sev, (1000, 5000, 500), (5000, 50000, 1000), (50000, 250000, 10000))
    return Case(
        "商标",
        "销售侵犯注册商标专用权的商品",
        [s1, "当事人不能说明商品的合法来源。"],
        "《中华人民共和国商标法》第五十七条第（三）项、第六十条第二款",
        _kinds("罚款", "没收非法财物"),
        fine,
        None,
        name,
    )


def _t_scale(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    s1 = (f"{found}，执法人员检查发现当事人使用的{r.randint(1, 4)}台电子计价秤未按规定申请"
          f"周期检定，超过检定周期仍在使用。")  # fmt: skip
    fine = _fine(r, sev, (0, 0, 1), (200, 1000, 100), (1000, 1000, 1))
    kinds = _kinds("警告") if sev == "轻微" else _kinds("罚款", "没收非法财物")
    return Case(
        "计量",
        "使用未经检定的计量器具",
        [s1],
        "《中华人民共和国计量法》第九条、《中华人民共和国计量法实施细则》第四十三条",
        kinds,
        fine or None,
    )


def _t_change(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    s1 = (f"经查，当事人自{found}起将经营场所变更至{e.district.addr}{r.choice(e.district.roads)}"
          f"{r.randint(1, 200)}号，未依法办理变更登记。")  # fmt: skip
    fine = _fine(r, sev, (0, 0, 1), (10000, 20000, 1000), (20000, 100000, 5000))
    kinds = _kinds("警告") if sev == "轻微" else _kinds("罚款")
    return Case(
        "登记注册",
        "未依法办理变更登记",
        [s1, "经责令改正，当事人拒不改正。"],
        "《中华人民共和国市场主体登记管理条例》第四十六条",
        kinds,
        fine or None,
    )


def _t_no_licence(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    gain = r.randint(1000, 80000)
    s1 = f"经查，当事人自{found}起未依法取得营业执照从事经营活动，违法所得{_yuan(gain)}元。"
    fine = _fine(r, sev, (500, 2000, 100), (2000, 10000, 500), (10000, 10000, 1))
    return Case(
        "登记注册",
        "未依法取得营业执照从事经营活动",
        [s1, "当事人已于案发后办理营业执照。"],
        "《无证无照经营查处办法》第十三条",
        _kinds("罚款", "没收违法所得"),
        fine,
        gain,
    )


def _t_online(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    s1 = (f"{found}，执法人员检查发现当事人在网络平台开设的网店未在首页显著位置持续公示营业执照"
          f"信息。")  # fmt: skip
    fine = _fine(r, sev, (0, 0, 1), (1000, 10000, 500), (10000, 20000, 1000))
    kinds = _kinds("警告") if sev == "轻微" else _kinds("罚款")
    return Case(
        "网络交易",
        "未公示营业执照信息",
        [s1, "当事人已改正。"],
        "《中华人民共和国电子商务法》第十五条、第七十六条第一款第（一）项",
        kinds,
        fine or None,
    )


def _t_consumer(r: random.Random, e: Entity, sev: str, found: str, org: str) -> Case:
    s1 = (f"经查，当事人在经营场所张贴“{r.choice(('售出商品概不退换', '特价商品不退不换', '最终解释权归本店所有'))}”"
          f"的告示，以格式条款排除消费者依法享有的权利。")  # fmt: skip
    fine = _fine(r, sev, (0, 0, 1), (2000, 20000, 1000), (20000, 50000, 1000))
    kinds = _kinds("警告") if sev == "轻微" else _kinds("警告", "罚款")
    return Case(
        "消费者权益保护",
        "利用格式条款排除消费者权利",
        [s1, "当事人已撤除相关告示。"],
        "《中华人民共和国消费者权益保护法》第二十六条、第五十六条第一款第（八）项",
        kinds,
        fine or None,
    )


_T = {
    "sampling": _t_sampling, "expired": _t_expired, "label": _t_label, "records": _t_records,
    "tableware": _t_tableware, "health": _t_health, "unlicensed": _t_unlicensed,
    "factory": _t_factory_test, "rx": _t_rx, "drug_expired": _t_drug_expired, "gsp": _t_gsp,
    "device": _t_device, "cosmetic": _t_cosmetic, "se_insp": _t_se_inspection,
    "se_reg": _t_se_register, "se_op": _t_se_operator, "price_tag": _t_price_tag,
    "price_fraud": _t_price_fraud, "ad_abs": _t_ad_absolute, "ad_false": _t_ad_false,
    "bad_goods": _t_bad_goods, "marking": _t_marking, "trademark": _t_trademark,
    "scale": _t_scale, "change": _t_change, "no_licence": _t_no_licence, "online": _t_online,
    "consumer": _t_consumer,
}  # fmt: skip
_GROUP_TEMPLATES = {
    "catering": {"sampling": 12, "tableware": 18, "health": 14, "records": 14, "unlicensed": 6,
                 "expired": 8, "price_tag": 8, "scale": 2, "ad_abs": 4, "change": 4, "online": 4,
                 "consumer": 2},
    "food_retail": {"sampling": 30, "expired": 18, "label": 8, "records": 12, "unlicensed": 5,
                    "price_tag": 10, "scale": 6, "ad_abs": 3, "change": 3, "trademark": 3,
                    "online": 2},
    "food_prod": {"sampling": 25, "factory": 20, "label": 10, "records": 10, "unlicensed": 5,
                  "ad_false": 5, "ad_abs": 5, "se_insp": 5, "change": 5},
    "drug": {"rx": 30, "drug_expired": 20, "gsp": 15, "device": 15, "price_tag": 8, "ad_abs": 7,
             "change": 5},
    "special_eq": {"se_insp": 40, "se_reg": 20, "se_op": 20, "bad_goods": 10, "change": 10},
    "retail": {"bad_goods": 25, "marking": 10, "trademark": 15, "price_tag": 12,
               "price_fraud": 8, "ad_abs": 10, "consumer": 8, "cosmetic": 4, "scale": 3,
               "online": 5},
    "agri": {"sampling": 20, "bad_goods": 30, "marking": 10, "change": 20, "ad_abs": 10,
             "price_tag": 10},
    "other": {"change": 25, "no_licence": 8, "bad_goods": 15, "ad_abs": 14, "ad_false": 6,
              "price_tag": 8, "trademark": 6, "scale": 6, "online": 8, "consumer": 4,
              "se_insp": 6, "se_reg": 3},
    "public": {"tableware": 30, "health": 20, "records": 20, "se_insp": 20, "price_tag": 10},
}  # fmt: skip
_TEMPLATE_TABLES = {
    g: _table([(_T[name], w) for name, w in weights.items()], 1000)
    for g, weights in _GROUP_TEMPLATES.items()
}
_SEVERITY = _table([("轻微", 10), ("一般", 80), ("严重", 10)], 100)


def _facts(sentences: list[str], pii: tuple[str, str] | None) -> str:
    """Join sentences into 40–200 characters; the PII sentences (if any) are always kept."""
    head, tail = pii or ("", "")
    text = head + sentences[0]
    for s in sentences[1:]:
        if len(text) + len(s) + len(tail) <= 200:
            text += s
    return text + tail
