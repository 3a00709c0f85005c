"""Realistic sample input files of all four kinds (`disclosure sample --out DIR --entities N`).

The files follow the data contract (publishing.contract has its vocabulary) the way real
exports do: a GB18030 CSV from Windows Excel (penalties), a UTF-8-with-BOM CSV (credit marks), NDJSON
with English keys (return pledges) and an XLSX with a title row and a 合计 row (blacklist).
About 3.5 % of the rows carry messy-but-valid values the contract says must be accepted
(other date forms, lower-case or spaced USCCs, short district names or codes, amounts with
thousands separators and 元, decision numbers with [] or 【】, full-width digits), and about
0.5 % of the penalty facts mention a person's ID and mobile number (valid check digits) so
that masking is exercised on realistic text. Nothing generated is invalid: no 简易 cases, no
event date after `today`, no repeated natural key.

Speed and memory: an entity is a pure function of (seed, index) — its attributes come from
one keyed BLAKE2b digest of the index — so nothing is kept per entity and rows are written as
they are made. Record streams use random.Random sub-streams of the seed. One million entities
take well under two minutes on one core.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import zipfile
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from publishing import clock
from publishing.contract import DISTRICTS

FILES = {
    "blacklist": "blacklist.xlsx",
    "penalty": "penalty.csv",
    "credit_mark": "credit_mark.csv",
    "return_pledge": "return_pledge.ndjson",
}
PROGRESS_EVERY = 50_000
MESSY = 0.035  # share of rows with one messy-but-valid value
PII = 0.005  # share of penalty facts that mention an ID and a mobile number
PENALTIES_PER_ENTITY = 0.6
PLEDGES_PER_ENTITY = 0.0113
BLACKLIST_PER_ENTITY = 0.00137
BLACKLIST_MIN = 20

# -- identification codes (private copies: GB 32100-2015, GB 11714, GB 11643, ISO 7064) -----
_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {ch: i for i, ch in enumerate(_ALPHABET)}
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _uscc_check(first17: str) -> str:
    """GB 32100-2015 check character: alphabet[(31 − Σ vᵢ·wᵢ mod 31) mod 31]."""
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, _WEIGHTS, strict=True))
    return _ALPHABET[(31 - total % 31) % 31]


def uscc_is_valid(code: str) -> bool:
    """A normalised 18-character USCC with the right check character (for the tests)."""
    return (
        len(code) == 18
        and code[0] in "123456789ANY"
        and code[2:8].isdigit()
        and all(ch in _VALUE for ch in code)
        and _uscc_check(code[:17]) == code[17]
    )


def _org_check(body8: str) -> str:
    """GB 11714 organisation-code check character (letters count 10 + their alphabet index)."""
    total = sum(
        (int(c) if c.isdigit() else ord(c) - 55) * w
        for c, w in zip(body8, _ORG_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def _reg_no_check(first14: str) -> str:
    """ISO 7064 MOD 11,10 check digit of the old 15-digit 注册号."""
    p = 10
    for ch in first14:
        s = (p + int(ch)) % 10 or 10
        p = s * 2 % 11
    return str((11 - p) % 10)


def resident_id_is_valid(code: str) -> bool:
    """GB 11643 check of an 18-character resident ID number (for the tests)."""
    if len(code) != 18 or not code[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(code[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == code[17]


# -- districts ------------------------------------------------------------------------------
class _District:
    __slots__ = ("code", "weight", "co", "ind", "addr", "authority", "dprefix", "branch",
                 "roads", "towns", "county")  # fmt: skip

    def __init__(self, code, weight, co, ind, addr, authority, dprefix, branch, roads, towns):
        self.code, self.weight, self.co, self.ind, self.addr = code, weight, co, ind, addr
        self.authority, self.dprefix, self.branch = authority, dprefix, branch
        self.roads, self.towns = tuple(roads.split()), tuple(towns.split())
        self.county = code.startswith("3706") and code[4] == "8"


_D = (
    _District("370602", 160, "烟台市芝罘区", "芝罘区", "烟台市芝罘区", "烟台市芝罘区市场监督管理局",
              "烟芝", "芝罘",
              "南大街 北马路 西大街 胜利路 解放路 只楚路 环山路 青年南路 幸福南路 毓璜顶东路 二马路 "
              "三马路 大海阳路 上夼西路 西南河路 世回尧路 黄务路 文化路 建设路 北大街 朝阳街 海港路",
              "向阳街道 东山街道 毓璜顶街道 通伸街道 凤凰台街道 奇山街道 白石街道 芝罘岛街道 黄务街道 "
              "只楚街道 世回尧街道 幸福街道"),
    _District("370613", 100, "烟台市莱山区", "莱山区", "烟台市莱山区", "烟台市莱山区市场监督管理局",
              "烟莱山", "莱山",
              "观海路 迎春大街 港城东大街 山海路 滨海中路 清泉路 枫林路 杰瑞路 金都路 盛泉路 双河东路",
              "黄海路街道 初家街道 滨海路街道 解甲庄街道 莱山街道 马山街道 院格庄街道"),
    _District("370672", 110, "烟台开发区", "烟台开发区", "烟台经济技术开发区",
              "烟台经济技术开发区市场监督管理局", "烟开", "开发区",
              "长江路 黄河路 珠江路 天山路 衡山路 金沙江路 泰山路 华山路 嵩山路 峨眉山路 太原路 "
              "秦淮河路 香江路 北京南路",
              "福莱山街道 大季家街道 八角街道 古现街道 潮水镇"),
    _District("370611", 90, "烟台市福山区", "福山区", "烟台市福山区", "烟台市福山区市场监督管理局",
              "烟福", "福山", "福海路 河滨路 永达街 福新街 南京路 松山路 汇福街 鸿福街 清洋街",
              "清洋街道 福新街道 门楼街道 东厅街道 高疃镇 张格庄镇 回里镇"),
    _District("370612", 60, "烟台市牟平区", "牟平区", "烟台市牟平区", "烟台市牟平区市场监督管理局",
              "烟牟", "牟平", "正阳路 宁海大街 通海路 新城大街 金埠大街 北关大街 文化街 东关路",
              "宁海街道 文化街道 武宁街道 大窑街道 姜格庄街道 龙泉镇 玉林店镇 观水镇 王格庄镇"),
    _District("370614", 65, "烟台市蓬莱区", "蓬莱区", "烟台市蓬莱区", "烟台市蓬莱区市场监督管理局",
              "烟蓬", "蓬莱", "钟楼北路 登州路 北关路 海市路 南关路 蓬莱阁东路 府前路 南王路",
              "登州街道 紫荆山街道 新港街道 蓬莱阁街道 南王街道 南长山街道 刘家沟镇 大辛店镇 "
              "村里集镇 北沟镇"),
    _District("370681", 90, "龙口市", "龙口市", "龙口市", "龙口市市场监督管理局", "龙", "龙口",
              "港城大道 振华路 东莱街 南山路 环城北路 龙港路 新嘉街 海岱路",
              "东莱街道 龙港街道 新嘉街道 徐福街道 东江街道 黄山馆镇 北马镇 芦头镇 下丁家镇 七甲镇 "
              "石良镇 兰高镇 诸由观镇"),
    _District("370682", 70, "莱阳市", "莱阳市", "莱阳市", "莱阳市市场监督管理局", "莱阳", "莱阳",
              "鹤山路 五龙路 富山路 旌旗路 昌山路 龙门路 文化路 蚬河路",
              "城厢街道 古柳街道 龙旺庄街道 冯格庄街道 柏林庄街道 沐浴店镇 团旺镇 穴坊镇 羊郡镇 "
              "姜疃镇 万第镇 照旺庄镇"),
    _District("370683", 80, "莱州市", "莱州市", "莱州市", "莱州市市场监督管理局", "莱州", "莱州",
              "文化东街 府前东街 文昌路 光州东街 掖县路 云峰北路 玉海街",
              "文昌路街道 永安路街道 三山岛街道 城港路街道 文峰路街道 沙河镇 朱桥镇 郭家店镇 金城镇 "
              "平里店镇 驿道镇 程郭镇 虎头崖镇"),
    _District("370685", 60, "招远市", "招远市", "招远市", "招远市市场监督管理局", "招", "招远",
              "温泉路 金晖路 府前路 罗峰路 玲珑路 天府路 初山路 魁星路",
              "罗峰街道 泉山街道 梦芝街道 温泉街道 大秦家街道 辛庄镇 蚕庄镇 金岭镇 毕郭镇 玲珑镇 "
              "张星镇 夏甸镇"),
    _District("370686", 40, "栖霞市", "栖霞市", "栖霞市", "栖霞市市场监督管理局", "栖", "栖霞",
              "迎宾路 霞光路 庄园街 文化路 跃进路 长春路 金山路",
              "翠屏街道 庄园街道 松山街道 观里镇 蛇窝泊镇 唐家泊镇 桃村镇 亭口镇 臧家庄镇 寺口镇 "
              "苏家店镇 杨础镇 西城镇"),
    _District("370687", 50, "海阳市", "海阳市", "海阳市", "海阳市市场监督管理局", "海", "海阳",
              "海政路 海阳路 虎山街 黄海大街 碧海路 凤城路 龙山街",
              "方圆街道 东村街道 凤城街道 龙山街道 留格庄镇 盘石店镇 郭城镇 徐家店镇 发城镇 小纪镇 "
              "行村镇 辛安镇 二十里店镇"),
    _District("370671", 15, "烟台高新区", "烟台高新区", "烟台高新技术产业开发区",
              "烟台高新技术产业开发区市场监督管理局", "烟高新", "高新区",
              "航天路 蓝海路 海意路 科技大道 创业路 经八路 纬三路", "马山街道"),
    _District("370600", 10, "烟台市", "烟台市", "烟台市莱山区", "烟台市市场监督管理局", "烟", "烟台",
              "观海路 迎春大街 港城东大街 山海路 滨海中路", "黄海路街道 初家街道 滨海路街道"),
)  # fmt: skip
_DIST = {d.code: d for d in _D}
assert set(_DIST) == set(DISTRICTS), "sample districts must match the contract"
CITY = _DIST["370600"]
# Messy but valid spellings of each district (short names, aliases, codes).
_DISTRICT_MESSY = {
    "370602": ("芝罘", "芝罘区", "烟台市芝罘区", "370602"),
    "370611": ("福山", "福山区", "370611"),
    "370612": ("牟平", "牟平区", "370612"),
    "370613": ("莱山", "莱山区", "烟台市莱山区", "370613"),
    "370614": ("蓬莱", "蓬莱区", "370614"),
    "370681": ("龙口", "370681"),
    "370682": ("莱阳", "370682"),
    "370683": ("莱州", "370683"),
    "370685": ("招远", "370685"),
    "370686": ("栖霞", "370686"),
    "370687": ("海阳", "370687"),
    "370671": ("高新区", "烟台高新区", "370671"),
    "370672": ("开发区", "烟台开发区", "370672"),
    "370600": ("市本级", "市级", "370600"),
}
# Historical area codes in USCCs of 蓬莱区 entities (蓬莱市 and 长岛县 before 2020).
_PENGLAI_AREAS = ("370614",) * 11 + ("370684",) * 8 + ("370634",) * 1


def _table(pairs, size: int = 4096) -> tuple:
    """A lookup table of `size` slots filled in proportion to the weights."""
    total = sum(w for _, w in pairs)
    out: list = []
    acc = 0.0
    for item, w in pairs:
        acc += w
        out.extend([item] * (round(acc * size / total) - len(out)))
    return tuple(out)


_DISTRICT_TABLE = _table([(d, d.weight) for d in _D])

# -- words ----------------------------------------------------------------------------------
_TA = tuple(dict.fromkeys(
    "盛鑫华泰福瑞祥丰隆昌兴宏鸿恒永金宝康安和顺达通利源德信诚佳美新海润博嘉亿万百天东南中蓝绿"
    "聚汇乐喜好旺发荣益广大富贵久长龙凤鹏飞腾翔骏锦绣宸耀辉明晨阳光星辰悦雅欣怡惠仁义智正友合众"
    "民农渔港湾岛滨泉山林森松竹梅兰春秋凯越卓远志诺硕浩瀚泓淼沃豪贤君尚品优盈鼎晟烨炜峰岳琪璟颐"
    "馨鲁齐胶芝玉翠银红紫青白云雨雷江河湖川平吉如意世纪天一元三双"
))  # fmt: skip
_TB = tuple(dict.fromkeys(
    "源达祥隆盛兴发利丰昌顺通泰和福旺鑫德华康安宇洋海川辉明晨阳光星辰悦雅欣怡惠仁信诚佳美新润"
    "博嘉亿万百成业泽庆荣益广茂正合众民泉山林森峰岳宝金玉翠鹏飞腾翔骏锦绣耀宸烨炜琪璟颐馨程远航"
    "帆宏鸿恒永强力凯越卓硕浩瀚沃豪贤尚品优盈鼎晟汇聚鲁胶东方园坊"
))  # fmt: skip
_TC = tuple("源来达祥隆盛兴发利丰昌顺通泰和福旺鑫德园坊轩阁居苑阳星缘康")
_FAMOUS = ("好运来", "聚福源", "百姓家", "万家福", "金海湾", "渔家乐", "老烟台", "海之韵", "福满楼",
           "家家乐", "佳和美", "同福居", "鸿运来", "金沙滩", "养马岛", "昆嵛山", "胶东人家",
           "鲁东", "惠民", "乐万家", "一品鲜", "大渔港", "海鲜坊", "喜盈门", "福临门")  # fmt: skip
_SURNAMES = tuple(
    "王王王王张张张李李李刘刘刘孙孙于于于姜姜曲曲林林徐徐高高赵杨杨陈宋宋邹隋衣初栾鞠宫修迟滕"
    "周吴郭马罗梁郑谢韩唐冯董程曹袁邓许沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任范方石姚"
    "谭廖金陆郝孔白崔康毛邱秦江史顾侯邵孟万段钱汤尹黎常武乔贺龚文牟矫柳逄苗车慕"
)  # fmt: skip
_GIVEN = tuple(dict.fromkeys(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚英华玉兰萍红梅鹏飞建国志海燕晓东春秀云凤文辉波宁"
    "浩宇婷雪琳瑞颖佳欣涵轩然萱俊斌鑫健晨琦彬翠莉倩璐峰岩龙振福德庆成利新洪宏永胜立学"
))  # fmt: skip
_CN_NUM = ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二", "十三",
           "十五", "十八", "二十")  # fmt: skip
_VILLAGE_SUFFIX = ("家村", "家庄村", "家疃村", "家沟村", "家夼村", "家泊村", "格庄村", "家屯村")

# group → company industry words
_CO_WORDS = {
    "catering": "餐饮管理 餐饮服务 酒店管理 饮食服务 餐饮连锁 海鲜酒楼 大酒店 餐饮",
    "food_retail": "食品 商贸 超市 连锁超市 副食品 粮油 果蔬 水产 水产品 海产品 肉类 酒业 茶业 "
    "冷链物流 农产品 食品销售 调味品 食品贸易",
    "food_prod": "食品 水产食品 海洋食品 肉类食品 乳业 葡萄酒 酿酒 粮油食品 饮品 果蔬食品 调味品 "
    "粉丝 面粉 食用油 海参 糕点 饮料 食品科技",
    "drug": "医药 大药房 医疗器械 药业 生物科技 医药连锁 健康科技",
    "special_eq": "电梯 电梯工程 锅炉 热力 燃气 气体 起重机械 物业管理 游乐设备 压力容器 供热",
    "retail": "百货 服装 服饰 家电 电器 家居 家具 珠宝 黄金珠宝 眼镜 鞋业 数码科技 母婴用品 化妆品 "
    "体育用品 商场 购物中心",
    "agri": "农业科技 果业 农业发展 种植 养殖 农资 苗木",
    "other": "贸易 科技 机械 建材 建筑工程 装饰工程 汽车销售 汽车维修 物流 广告 文化传媒 信息技术 "
    "化工 塑料制品 五金 印刷 海洋科技 网络科技 教育咨询 房地产开发 环保科技 电子 精密机械 "
    "船舶 新材料 能源 电气 工贸 进出口 国际贸易 人力资源 企业管理咨询 家政服务 美容美发 "
    "健身 旅行社 运输 仓储 包装 纺织 木业 石材 黄金 矿业",
}
# group → individual-business shop words
_SHOP_WORDS = {
    "catering": "饺子馆 饭店 小吃部 烧烤店 面馆 快餐店 大排档 鲁菜馆 包子铺 火锅店 麻辣烫店 酒馆 "
    "饭庄 餐馆 焖子店 拉面馆 鲅鱼水饺馆 海鲜馆 农家乐 炸鸡店 奶茶店 早餐店 烤肉店 "
    "家常菜馆",
    "food_retail": "超市 便利店 副食店 水果店 蔬菜店 海鲜店 熟食店 粮油店 调料店 烟酒店 食品店 "
    "干货店 批发部 商店 食杂店 糕点店 面包房 冷饮店 肉食店 鲜肉店 茶叶店 豆制品店 "
    "蛋品店 百货超市 生鲜超市",
    "food_prod": "馒头房 豆腐坊 油坊 花饽饽坊 煎饼坊 面食加工坊 粉丝加工坊 酒坊 熟食加工坊 糕点坊",
    "drug": "药店 大药房 医疗器械经营部 药房",
    "retail": "服装店 鞋店 家电商行 家电城 家具店 珠宝店 眼镜店 百货店 母婴店 化妆品店 手机店 "
    "五金店 体育用品店 童装店 床上用品店 布艺店 箱包店 钟表店 家纺店",
    "agri": "农资店 种子店 化肥经营部 苗木场 养殖场 果园",
    "other": "理发店 美容院 汽车修理部 洗车行 快递服务站 建材商店 装饰材料店 电脑维修部 打印部 "
    "洗衣店 照相馆 电动车行 修配部 广告部 文具店 花店 宠物店 健身房 门窗加工部 "
    "装饰工程部 汽车美容店 轮胎店 电器维修部",
}
# group → words of non-company enterprises (厂, 商行, 经营部 …), the form included
_FACTORY_WORDS = {
    "catering": "饭店 大酒店 酒楼 餐饮店",
    "food_retail": "商行 经营部 批发部 食品商行 水产品经营部 粮油经营部",
    "food_prod": "水产品加工厂 食品厂 粉丝厂 酿酒厂 面粉厂 饮料厂 肉制品加工厂 海产品加工厂 "
    "果蔬加工厂 食品加工厂 油脂厂",
    "drug": "医疗器械经营部",
    "special_eq": "锅炉厂 电梯经营部 液化气供应站",
    "retail": "商行 经营部 门市部 百货商行 服装商行 家电商行",
    "agri": "果品站 种植场 养殖场 苗圃",
    "other": "机械厂 塑料制品厂 木器厂 纸箱厂 服装厂 五金厂 商行 经营部 建材经营部 汽车修理厂 包装厂 "
    "石材厂",
}
_CO_WORDS = {k: tuple(v.split()) for k, v in _CO_WORDS.items()}
_SHOP_WORDS = {k: tuple(v.split()) for k, v in _SHOP_WORDS.items()}
_FACTORY_WORDS = {k: tuple(v.split()) for k, v in _FACTORY_WORDS.items()}
_CO_FORMS = _table(
    [("有限公司", 65), ("有限责任公司", 25), ("股份有限公司", 6), ("集团有限公司", 4)], 100
)

# Return-pledge categories by word (company words and shop words).
_PLEDGE_WORDS = {
    "co": (("百货", "商场"), ("商场", "商场"), ("购物中心", "商场"), ("服装", "服装"), ("服饰", "服装"),
           ("家电", "家电"), ("电器", "家电"), ("家居", "家居"), ("家具", "家居"), ("珠宝", "珠宝"),
           ("黄金珠宝", "珠宝"), ("眼镜", "眼镜"), ("鞋业", "鞋帽"), ("数码科技", "数码"),
           ("母婴用品", "母婴"), ("化妆品", "化妆品"), ("体育用品", "体育用品"), ("超市", "超市"),
           ("连锁超市", "超市")),
    "shop": (("服装店", "服装"), ("童装店", "服装"), ("鞋店", "鞋帽"), ("家电商行", "家电"),
             ("家电城", "家电"), ("家具店", "家居"), ("床上用品店", "家居"), ("家纺店", "家居"),
             ("布艺店", "家居"), ("珠宝店", "珠宝"), ("钟表店", "珠宝"), ("眼镜店", "眼镜"),
             ("百货店", "百货"), ("母婴店", "母婴"), ("化妆品店", "化妆品"), ("手机店", "数码"),
             ("五金店", "五金"), ("体育用品店", "体育用品"), ("箱包店", "箱包"), ("超市", "超市"),
             ("百货超市", "超市"), ("便利店", "超市")),
}  # fmt: skip
_PLEDGE_GROUP = {"超市": "food_retail", "百货超市": "food_retail", "便利店": "food_retail",
                 "连锁超市": "food_retail"}  # fmt: skip

# Entity types: (USCC prefix, type) by share.
_TYPES = _table([
    (("92", "ind"), 6000), (("91", "co"), 3150), (("91", "fa"), 300), (("91", "br"), 200),
    (("93", "coop"), 150), (("12", "inst"), 80), (("11", "gov"), 2), (("52", "npo"), 60),
    (("51", "assoc"), 3), (("N2", "village"), 40), (("Y1", "other"), 8), (("A1", "army"), 2),
], 10000)  # fmt: skip
_GROUPS = {
    "co": _table([("catering", 8), ("food_retail", 14), ("food_prod", 2), ("drug", 3),
                  ("special_eq", 2), ("retail", 14), ("agri", 4), ("other", 53)], 1000),
    "ind": _table([("catering", 26), ("food_retail", 28), ("food_prod", 3), ("drug", 2),
                   ("retail", 20), ("agri", 3), ("other", 18)], 1000),
    "fa": _table([("catering", 10), ("food_retail", 20), ("food_prod", 15), ("retail", 10),
                  ("agri", 5), ("other", 40)], 1000),
    "br": _table([("food_retail", 30), ("catering", 15), ("drug", 15), ("retail", 20),
                  ("other", 20)], 1000),
}  # fmt: skip
FOOD_GROUPS = frozenset({"catering", "food_retail", "food_prod"})
_COOP_PRODUCTS = ("苹果种植", "大樱桃种植", "葡萄种植", "果蔬种植", "蔬菜种植", "花生种植",
                  "小麦种植", "生猪养殖", "肉鸡养殖", "海参养殖", "茶叶种植", "蓝莓种植", "梨种植",
                  "食用菌种植", "中药材种植", "西瓜种植", "果品", "农机", "土地股份")  # fmt: skip
_COOP_FORMS = ("专业合作社", "专业合作社", "农民专业合作社")
_INST_KINDS = ("小学", "幼儿园", "卫生室", "敬老院", "文化站", "中心小学", "初级中学")
_GOV_DEPTS = ("教育和体育局", "卫生健康局", "农业农村局", "住房和城乡建设局", "交通运输局",
              "自然资源和规划局", "人力资源和社会保障局", "民政局", "司法局", "财政局", "文化和旅游局",
              "应急管理局", "退役军人事务局", "水务局", "商务局", "统计局", "审计局", "机关事务服务中心",
              "人民政府")  # fmt: skip
_NPO_KINDS = (
    "幼儿园",
    "养老院",
    "培训学校",
    "职业培训学校",
    "艺术培训学校",
    "康复中心",
    "托育中心",
)
_ASSOC = ("餐饮行业协会", "食品工业协会", "个体劳动者协会", "消费者协会", "商会", "烹饪协会",
          "物业管理协会", "酒业协会", "果业协会", "水产行业协会")  # fmt: skip

# -- entities -------------------------------------------------------------------------------


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
        e.food_mark = flag < 131  # 0.2 %
        e.se_mark = 131 <= flag < 164  # 0.05 %
        e.pledge = 164 <= flag < 905  # 1.13 %
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


# -- value formats --------------------------------------------------------------------------
_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _iso(d: date) -> str:
    return d.isoformat()


def _date_text(d: date, style: int) -> str:
    """The contract's other date spellings: 2022/3/5, 2022.3.5, 2022年3月5日, 20220305."""
    style %= 4
    if style == 0:
        return f"{d.year}/{d.month}/{d.day}"
    if style == 1:
        return f"{d.year}.{d.month}.{d.day}"
    if style == 2:
        return f"{d.year}年{d.month}月{d.day}日"
    return f"{d:%Y%m%d}"


def _cn_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _messy_code(code: str, style: int) -> str:
    style %= 5
    if style == 0:
        return code.lower()
    if style == 1:
        return " ".join(code[k : k + 4] for k in range(0, 18, 4))
    if style == 2:
        return f"{code[:8]}-{code[8:17]}-{code[17]}"
    if style == 3:
        return code.translate(_FULLWIDTH)
    return f" {code} "


def _messy_district(code: str, style: int) -> str:
    forms = _DISTRICT_MESSY[code]
    return forms[style % len(forms)]


def _yuan(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _workday(d: date, today: date) -> date:
    """A working day near d, never after today: Saturday → Friday, Sunday → Monday (or Friday)."""
    wd = d.weekday()
    if wd == 5:
        d -= timedelta(days=1)
    elif wd == 6:
        d += timedelta(days=1) if d < today else timedelta(days=-2)
    return min(d, today)


# -- penalties ------------------------------------------------------------------------------
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
_PRODUCTS = (
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

    def __init__(self, domain, vtype, facts, basis, kinds, fine=None, gain=None, product=None,
                 summary=None):  # fmt: skip
        self.domain, self.vtype, self.facts, self.basis = domain, vtype, facts, basis
        self.kinds, self.fine, self.gain, self.product = kinds, fine, gain, product
        self.summary = summary or vtype


def _fine(r: random.Random, sev: str, light: tuple, normal: tuple, grave: tuple) -> int:
    lo, hi, step = light if sev == "轻微" else grave if sev == "严重" else normal
    return r.randrange(lo, hi + 1, step)


def _kinds(*names: str) -> str:
    return ";".join(n for n in names if n)


def _t_sampling(r, e, sev, found, org, product=None):
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


def _t_expired(r, e, sev, found, org):
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


def _t_label(r, e, sev, found, org):
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


def _t_records(r, e, sev, found, org):
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


def _t_tableware(r, e, sev, found, org):
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


def _t_health(r, e, sev, found, org):
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


def _t_unlicensed(r, e, sev, found, org):
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


def _t_factory_test(r, e, sev, found, org):
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


def _t_rx(r, e, sev, found, org):
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


def _t_drug_expired(r, e, sev, found, org):
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


def _t_gsp(r, e, sev, found, org):
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


def _t_device(r, e, sev, found, org):
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


def _t_cosmetic(r, e, sev, found, org):
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


def _t_se_inspection(r, e, sev, found, org):
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


def _t_se_register(r, e, sev, found, org):
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


def _t_se_operator(r, e, sev, found, org):
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


def _t_price_tag(r, e, sev, found, org):
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


def _t_price_fraud(r, e, sev, found, org):
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


def _t_ad_absolute(r, e, sev, found, org):
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


def _t_ad_false(r, e, sev, found, org):
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


def _t_bad_goods(r, e, sev, found, org):
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


def _t_marking(r, e, sev, found, org):
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


def _t_trademark(r, e, sev, found, org):
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


def _t_scale(r, e, sev, found, org):
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


def _t_change(r, e, sev, found, org):
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


def _t_no_licence(r, e, sev, found, org):
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


def _t_online(r, e, sev, found, org):
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


def _t_consumer(r, e, sev, found, org):
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
_ID_AREAS = ("370602", "370611", "370612", "370613", "370634", "370681", "370682", "370683",
             "370684", "370685", "370686", "370687", "370702", "371002", "370283")  # fmt: skip


def _resident_id(r: random.Random) -> str:
    birth = date(1960, 1, 1) + timedelta(days=r.randrange(40 * 365))
    first17 = f"{r.choice(_ID_AREAS)}{birth:%Y%m%d}{r.randrange(1000):03d}"
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def _mobile(r: random.Random) -> str:
    return f"1{r.choice('3456789')}{r.randrange(10**9):09d}"


def _facts(sentences: list[str], pii: tuple[str, str] | None) -> str:
    """Join sentences into 40–200 characters; the PII sentences (if any) are always kept."""
    head, tail = pii or ("", "")
    text = head + sentences[0]
    for s in sentences[1:]:
        if len(text) + len(s) + len(tail) <= 200:
            text += s
    return text + tail


# -- the generator --------------------------------------------------------------------------


class _BlIssue:
    __slots__ = ("publisher", "district", "issued_on", "issue_no", "entries", "used")

    def __init__(self, publisher: str, district: str | None, issued_on: date) -> None:
        self.publisher, self.district, self.issued_on = publisher, district, issued_on
        self.issue_no = ""
        self.entries: list[_BlEntry] = []
        self.used: set[tuple[int, str]] = set()  # (entity index, product)


class _BlEntry:
    __slots__ = ("issue", "entity", "product", "decision_no", "action", "violation", "persons")

    def __init__(self, issue: _BlIssue, product: tuple) -> None:
        self.issue, self.product = issue, product
        self.entity: Entity | None = None
        self.decision_no = ""
        self.action = ""
        self.violation = ""
        self.persons = ""


class _Generator:
    def __init__(self, out: Path, entities: int, seed: int, today: date,
                 progress: Callable[[str, int], None] | None) -> None:  # fmt: skip
        self.out, self.n, self.seed, self.today, self.progress = (
            out,
            entities,
            seed,
            today,
            progress,
        )
        self.entity = _Entities(seed, entities)
        self.start = today - timedelta(days=1094)  # the last three years
        self.span = (today - self.start).days
        self.penalties = round(PENALTIES_PER_ENTITY * entities)
        self.forced: dict[int, _BlEntry] = {}
        self.issues: list[_BlIssue] = []

    def rng(self, stream: str) -> random.Random:
        return random.Random(f"{self.seed}:{stream}")

    def _tick(self, kind: str, rows: int) -> None:
        if self.progress is not None and rows % PROGRESS_EVERY == 0:
            self.progress(kind, rows)

    def _done(self, kind: str, rows: int) -> None:
        if self.progress is not None and (rows == 0 or rows % PROGRESS_EVERY):
            self.progress(kind, rows)

    # -- entity choice ----------------------------------------------------------------------
    def _blacklist_entity(self, r: random.Random, entry: _BlEntry) -> Entity:
        """A food business of the issue's district (any district for the city's issues).

        (entity, product) stays unique within the issue, so the natural key publisher + issue +
        entity + products is never repeated, even with fewer entities than entries."""
        issue, used = entry.issue, entry.issue.used
        e = fallback = None
        for _ in range(5000):
            candidate = self.entity(r.randrange(self.n))
            if (candidate.i, entry.product[0]) in used:
                continue
            fallback = fallback or candidate
            if candidate.group in FOOD_GROUPS and issue.district in (None, candidate.district.code):
                e = candidate
                break
        e = e or fallback
        if e is None:  # every entity already listed with this product: another product
            e = self.entity(r.randrange(self.n))
            entry.product = next(p for p in _BLACKLIST_PRODUCTS if (e.i, p[0]) not in used)
        used.add((e.i, entry.product[0]))
        return e

    # -- dates ------------------------------------------------------------------------------
    def decided_on(self, j: int) -> date:
        """Penalty j's decision date: chronological over the last three years, working days."""
        offset = j * self.span // max(1, self.penalties)
        return _workday(self.start + timedelta(days=offset), self.today)

    # -- blacklist plan ---------------------------------------------------------------------
    def plan_blacklist(self) -> None:
        """Issues and entries; most entries are tied to a penalty row generated later."""
        r = self.rng("blacklist-plan")
        total = max(BLACKLIST_MIN, round(BLACKLIST_PER_ENTITY * self.n))
        sizes: list[int] = []
        left = total
        while left > 12:
            s = r.randint(5, 12)
            if 0 < left - s < 5:
                s = left - 5
            sizes.append(s)
            left -= s
        sizes.append(left)
        first = self.start + timedelta(days=45)
        gap = (self.today - first).days / len(sizes)
        numbers: dict[tuple[str, int], int] = {}
        for k, size in enumerate(sizes):
            day = first + timedelta(days=int(gap * k + r.random() * gap * 0.8))
            day = _workday(min(day, self.today), self.today)
            if r.random() < 0.55:
                issue = _BlIssue(CITY.authority, None, day)
            else:
                dist = _DISTRICT_TABLE[r.randrange(4096)]
                issue = _BlIssue(dist.authority, dist.code if dist is not CITY else None, day)
            key = (issue.publisher, day.year)
            numbers[key] = numbers.get(key, r.randint(0, 2)) + 1
            issue.issue_no = f"{day.year}年第{numbers[key]}期"
            self.issues.append(issue)
            for _ in range(size):
                entry = _BlEntry(issue, r.choice(_BLACKLIST_PRODUCTS))
                issue.entries.append(entry)
                j = self._penalty_slot(r, day) if r.random() < 0.85 else None
                if j is not None:
                    self.forced[j] = entry
                else:
                    self._unlinked(r, entry)

    def _penalty_slot(self, r: random.Random, issued_on: date) -> int | None:
        """An unused penalty row decided 10–60 days before issued_on, or None."""
        if self.penalties == 0:
            return None
        target = issued_on - timedelta(days=r.randint(10, 60))
        if target < self.start:
            return None
        j = min(self.penalties - 1, (target - self.start).days * self.penalties // self.span)
        for probe in range(j, max(-1, j - 200), -1):
            if probe not in self.forced and self.decided_on(probe) < issued_on:
                return probe
        return None

    def _unlinked(self, r: random.Random, entry: _BlEntry) -> None:
        e = self._blacklist_entity(r, entry)
        entry.entity = e
        name, item = entry.product[0], entry.product[1]
        entry.violation = f"经营的{name}经抽样检验，{item}项目不符合食品安全标准"
        entry.action = r.choice(("已立案调查", "责令停止销售，已立案调查",
                                 "下架封存不合格产品，已立案调查"))  # fmt: skip
        entry.persons = self._persons(r, e)

    def _persons(self, r: random.Random, e: Entity) -> str:
        names = [e.rep]
        if e.kind != "ind" and r.random() < 0.4:
            d = e.d
            other = _SURNAMES[d[50] % len(_SURNAMES)] + _GIVEN[d[51] % len(_GIVEN)]
            if other != e.rep:
                names.append(other)
        sep = "、" if r.random() < 0.9 else r.choice(("，", ",", ";", "；"))
        return sep.join(names)

    # -- credit marks and return pledges (one pass over the entities) -------------------------
    def write_marks_and_pledges(self) -> tuple[Path, Path]:
        r = self.rng("marks")
        rp = self.rng("pledges")
        today = self.today
        quarters = []
        q = date(today.year, 12, 31)
        while len(quarters) < 4:
            if q <= today - timedelta(days=10):
                quarters.append(q)
            q = date(q.year, q.month - 2, 1) - timedelta(days=1)
        q_table = _table(
            [(quarters[0], 70), (quarters[1], 20), (quarters[2], 7), (quarters[3], 3)], 100
        )
        year_end = date(today.year - 1, 12, 31)
        grade_g = _table([("A", 30), ("B", 55), ("C", 10), ("D", 4), ("E", 1)], 1000)
        grade_d = _table([("A", 35), ("B", 50), ("C", 12), ("D", 3)], 100)
        abnormal_co = ("未按照《企业信息公示暂行条例》第八条规定的期限公示年度报告",
                       "通过登记的住所或者经营场所无法联系",
                       "公示企业信息隐瞒真实情况、弄虚作假",
                       "未在市场监督管理部门依照《企业信息公示暂行条例》第十条规定责令的期限内公示有关企业信息")  # fmt: skip
        abnormal_ind = ("未按规定报送年度报告", "通过登记的经营场所无法联系")
        serious_by_group = {
            "food": "因食品安全领域违法行为受到较重行政处罚，列入严重违法失信名单",
            "special_eq": "因特种设备安全领域违法行为受到较重行政处罚，列入严重违法失信名单",
            "drug": "因药品领域违法行为受到较重行政处罚，列入严重违法失信名单",
            "retail": "因销售不合格产品受到较重行政处罚，列入严重违法失信名单",
        }
        serious_other = ("因提交虚假材料取得市场主体登记被撤销登记，列入严重违法失信名单",
                         "被列入经营异常名录届满3年仍未履行相关义务，列入严重违法失信名单")  # fmt: skip
        notes = ("", "", "", "", "年度分类", "按季度动态调整", "系统自动分类", "")
        cm_path = self.out / FILES["credit_mark"]
        rp_path = self.out / FILES["return_pledge"]
        marks = pledges = 0
        with cm_path.open("w", encoding="utf-8-sig", newline="") as cf, \
                rp_path.open("w", encoding="utf-8", newline="\n") as pf:  # fmt: skip
            w = csv.writer(cf, lineterminator="\n")
            w.writerow(["统一社会信用代码", "注册号", "企业名称", "法定代表人", "所属区市", "住所",
                        "标注类型", "分类结果", "监管领域", "认定日期", "有效期至", "列入原因",
                        "备注"])  # fmt: skip
            for i in range(self.n):
                e = self.entity(i)
                d = e.d
                ent = e.row()
                rows = [["信用风险分类", grade_g[_u16(d, 52) % 1000], "通用",
                         q_table[d[54] % 100], None, "", notes[d[55] % 8]]]  # fmt: skip
                if e.food_mark:
                    rows.append(["信用风险分类", grade_d[d[56] % 100], "食品生产", year_end, None,
                                 "", "食品生产企业风险分级"])  # fmt: skip
                if e.se_mark:
                    rows.append(["信用风险分类", grade_d[d[57] % 100], "特种设备",
                                 quarters[d[57] % 2], None, "", ""])  # fmt: skip
                if e.abnormal:
                    reasons = abnormal_ind if e.kind == "ind" else abnormal_co
                    marked = today - timedelta(days=10 + _u16(d, 58) % 1400)
                    rows.append(["经营异常名录", "", "", _workday(marked, today), None,
                                 reasons[d[60] % len(reasons)], ""])  # fmt: skip
                if e.serious:
                    group = "food" if e.group in FOOD_GROUPS else e.group
                    reason = serious_by_group.get(group) if d[63] < 200 else None
                    reason = reason or serious_other[d[63] % 2]
                    marked = _workday(today - timedelta(days=20 + _u16(d, 61) % 1000), today)
                    until = date(marked.year + 3, marked.month, 1) + timedelta(days=marked.day - 2)
                    rows.append(["严重违法失信名单", "", "", marked, until, reason, ""])
                for row in rows:
                    out = list(ent)
                    marked_text = _iso(row[3])
                    if r.random() < MESSY:
                        style = r.randrange(4)
                        if style == 0:
                            marked_text = _date_text(row[3], r.randrange(4))
                        elif style == 1 and e.uscc:
                            out[0] = _messy_code(e.uscc, r.randrange(5))
                        elif style == 2:
                            out[4] = _messy_district(e.district.code, r.randrange(4))
                        else:
                            out[5] = out[5].translate(_FULLWIDTH)
                    out += [row[0], row[1], row[2], marked_text,
                            _iso(row[4]) if row[4] else "", row[5], row[6]]  # fmt: skip
                    w.writerow(out)
                    marks += 1
                    self._tick("credit_mark", marks)
                if e.pledge:
                    pf.write(self._pledge(rp, e))
                    pledges += 1
                    self._tick("return_pledge", pledges)
            if pledges == 0:  # tiny samples: one pledge all the same (an empty file is unusable)
                shops = (self.entity(i) for i in range(min(self.n, 1000)))
                e = next((x for x in shops if x.group in ("retail", "food_retail")), self.entity(0))
                pf.write(self._pledge(rp, e))
                pledges = 1
        self._done("credit_mark", marks)
        self._done("return_pledge", pledges)
        return cm_path, rp_path

    def _pledge(self, r: random.Random, e: Entity) -> str:
        cat = e.category or "商场"
        pledged = _workday(self.today - timedelta(days=r.randint(5, 1090)), self.today)
        excl = {
            "超市": "生鲜食品、散装食品、拆封的预包装食品、药品、烟草制品",
            "珠宝": "定制类珠宝首饰、已刻字商品、黄金投资类产品",
            "服装": "贴身内衣、泳装、已修改尺寸的服装",
            "家电": "已安装使用的家电、定制商品",
            "化妆品": "已拆封的化妆品、试用装",
            "眼镜": "已验配加工的眼镜片",
        }.get(cat, "定制商品、鲜活易腐商品、已拆封的个人卫生用品")
        obj: dict[str, object] = {}
        if e.uscc:
            obj["uscc"] = e.uscc
        else:
            obj["reg_no"] = e.reg_no
        obj.update({
            "entity_name": e.name,
            "legal_rep": e.rep,
            "district": DISTRICTS[e.district.code],
            "address": e.address,
            "category": cat,
            "return_days": r.choice((7, 7, 7, 7, 7, 15, 15, 15, 30, 30)),
            "refund_days": r.choice((0, 1, 1, 3, 3, 3, 3, 7, 7, 7)),
            "conditions": r.choice((
                "商品完好，不影响二次销售，凭购物凭证办理",
                "商品及包装、吊牌完好，附件、赠品齐全",
                "凭购物小票或发票，商品未使用、未损坏",
            )),
            "exclusions": excl,
            "pledged_on": _iso(pledged),
            "model_unit": "是" if r.random() < 0.08 else "否",
            "status": "有效",
        })  # fmt: skip
        if r.random() < MESSY:
            style = r.randrange(3)
            if style == 0:
                obj["pledged_on"] = _date_text(pledged, r.randrange(4))
            elif style == 1 and e.uscc:
                obj["uscc"] = _messy_code(e.uscc, r.randrange(5))
            else:
                obj["district"] = _messy_district(e.district.code, r.randrange(4))
        return json.dumps(obj, ensure_ascii=False) + "\n"

    # -- penalties --------------------------------------------------------------------------
    def write_penalties(self) -> Path:
        r = self.rng("penalties")
        path = self.out / FILES["penalty"]
        seqs: dict[tuple[str, int], int] = {}
        n = self.n
        entity = self.entity
        with path.open("w", encoding="gb18030", newline="") as f:
            w = csv.writer(f, lineterminator="\r\n")
            w.writerow(["行政处罚决定书文号", "当事人名称", "统一社会信用代码", "注册号", "法定代表人",
                        "所属区市", "住所", "程序类型", "违法行为类型", "主要违法事实", "处罚依据",
                        "处罚种类", "罚款金额(元)", "罚款金额(万元)", "没收违法所得金额(元)",
                        "处罚机关", "处罚决定日期", "失信程度", "领域", "联系电话"])  # fmt: skip
            for j in range(self.penalties):
                decided = self.decided_on(j)
                entry = self.forced.get(j)
                if entry is not None:
                    e = self._blacklist_entity(r, entry)
                    sev = "严重" if r.random() < 0.3 else "一般"
                else:
                    while True:
                        e = entity(r.randrange(n))
                        g = e.group
                        if g == "public" and r.random() < 0.9:
                            continue
                        if g == "other" and r.random() < 0.35:
                            continue
                        break
                    sev = _SEVERITY[r.randrange(100)]
                dist = e.district
                authority = dist if entry is not None or r.random() > 0.03 else CITY
                found = _cn_date(decided - timedelta(days=r.randint(20, 150)))
                org = authority.authority if r.random() < 0.7 else r.choice(_SAMPLERS)
                if entry is not None:
                    case = _t_sampling(r, e, sev, found, org, entry.product)
                else:
                    case = _TEMPLATE_TABLES[e.group][r.randrange(1000)](r, e, sev, found, org)
                pii = None
                if r.random() < PII:
                    who = (
                        e.rep
                        if e.kind == "ind"
                        else _SURNAMES[r.randrange(len(_SURNAMES))] + r.choice(_GIVEN)
                    )
                    role = "系该店经营者" if e.kind == "ind" else "系当事人现场负责人"
                    pid = _resident_id(r)
                    if r.random() < 0.1:  # an old 15-digit ID number
                        pid = pid[:6] + pid[8:17]
                    pii = (f"{who}(身份证号{pid}){role}。", f"联系电话{_mobile(r)}。")
                facts = _facts(case.facts, pii)
                key = (authority.dprefix, decided.year)
                seq = seqs.get(key, r.randint(0, 30)) + r.choice((1, 1, 1, 2, 3))
                seqs[key] = seq
                number = f"{authority.dprefix}市监罚〔{decided.year}〕{seq}号"
                decision_text = number
                fine_yuan = "" if case.fine is None else str(case.fine)
                fine_wan = ""
                gain = "" if case.gain is None else _yuan(case.gain)
                decided_text = _iso(decided)
                out = e.row()
                if case.fine and case.fine % 100 == 0 and r.random() < 0.01:
                    fine_yuan, fine_wan = "", f"{case.fine / 10000:.4f}".rstrip("0").rstrip(".")
                if r.random() < MESSY:
                    style = r.randrange(6)
                    if style == 0:
                        decided_text = _date_text(decided, r.randrange(4))
                    elif style == 1 and e.uscc:
                        out[0] = _messy_code(e.uscc, r.randrange(5))
                    elif style == 2:
                        out[4] = _messy_district(dist.code, r.randrange(4))
                    elif style == 3 and fine_yuan:
                        fine_yuan = f"{case.fine:,}元" if r.random() < 0.6 else f"{case.fine:,}.00"
                    elif style == 4:
                        year = decided.year
                        brackets = ("[", "]") if r.random() < 0.5 else ("【", "】")
                        decision_text = number.replace(
                            f"〔{year}〕", f"{brackets[0]}{year}{brackets[1]}"
                        )
                    else:
                        out[5] = out[5].translate(_FULLWIDTH)
                procedure = "普通" if r.random() < 0.97 else "一般"
                w.writerow([decision_text, *out[2:3], *out[0:2], *out[3:6], procedure, case.vtype,
                            facts, case.basis, case.kinds, fine_yuan, fine_wan, gain,
                            authority.authority, decided_text, sev, case.domain, e.phone])  # fmt: skip
                if entry is not None:
                    entry.entity = e
                    entry.decision_no = number
                    entry.violation = case.summary
                    parts = []
                    if gain:
                        parts.append(f"没收违法所得{gain}元")
                    if case.fine:
                        parts.append(f"罚款{case.fine}元")
                    if "吊销许可证件" in case.kinds:
                        parts.append("吊销食品经营许可证")
                    entry.action = "，".join(parts) or "没收违法所得"
                    entry.persons = self._persons(r, e)
                self._tick("penalty", j + 1)
        self._done("penalty", self.penalties)
        return path

    # -- blacklist --------------------------------------------------------------------------
    def write_blacklist(self) -> Path:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Alignment, Font

        r = self.rng("blacklist")
        wb = Workbook(write_only=True)
        stamp = datetime(self.today.year, self.today.month, self.today.day, 9, 0, 0)
        wb.properties.created = wb.properties.modified = stamp
        wb.properties.creator = "烟台市市场监督管理局"
        ws = wb.create_sheet("黑榜汇总")
        headers = ["序号", "期次", "发布单位", "发布日期", "生产经营者名称", "统一社会信用代码", "注册号",
                   "法定代表人", "所属区市", "经营场所", "责任人员", "涉案产品", "违法事实", "处理结果",
                   "行政处罚决定书文号"]  # fmt: skip
        widths = (6, 14, 30, 12, 36, 22, 18, 10, 14, 36, 14, 12, 50, 36, 28)
        for k, width in enumerate(widths):
            ws.column_dimensions[chr(65 + k)].width = width
        ws.merged_cells.add(f"A1:{chr(64 + len(headers))}1")
        title = WriteOnlyCell(ws, value='烟台市食品安全"黑榜"汇总')
        title.font = Font(bold=True, size=16)
        title.alignment = Alignment(horizontal="center")
        ws.append([title])
        ws.append(headers)
        rows = 0
        for issue in self.issues:
            for entry in issue.entries:
                e = entry.entity
                if e is None:  # a planned penalty row that was never written (cannot happen)
                    continue
                rows += 1
                issued: object = issue.issued_on
                issue_no = issue.issue_no
                uscc = e.uscc or ""
                district = DISTRICTS[e.district.code]
                if r.random() < MESSY * 2:  # a small file: a few more, so every kind shows up
                    style = r.randrange(4)
                    if style == 0:
                        issued = _date_text(issue.issued_on, r.randrange(4))
                    elif style == 1:
                        issue_no = issue_no.split("年", 1)[1]  # 第9期: the year from 发布日期
                    elif style == 2 and uscc:
                        uscc = _messy_code(uscc, r.randrange(5))
                    else:
                        district = _messy_district(e.district.code, r.randrange(4))
                ws.append([rows, issue_no, issue.publisher, issued, e.name, uscc, e.reg_no or None,
                           e.rep, district, e.address, entry.persons, entry.product[0],
                           entry.violation, entry.action, entry.decision_no or None])  # fmt: skip
                self._tick("blacklist", rows)
        ws.append(["合计", f"共{rows}条"])
        buf = io.BytesIO()
        wb.save(buf)
        path = self.out / FILES["blacklist"]
        path.write_bytes(_deterministic_zip(buf.getvalue(), stamp))
        self._done("blacklist", rows)
        return path


def _deterministic_zip(data: bytes, stamp: datetime) -> bytes:
    """The XLSX with fixed member timestamps and document dates: same seed, same bytes."""
    iso = stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:  # fmt: skip
        for info in zin.infolist():
            body = zin.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + iso, body)
            member = zipfile.ZipInfo(info.filename, date_time=stamp.timetuple()[:6])
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o600 << 16
            zout.writestr(member, body)
    return out.getvalue()


def generate(
    out: Path,
    entities: int,
    seed: int = 20261127,
    today: date | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Path]:
    """Write sample files of all four kinds for `entities` entities into `out`.

    Returns kind → path. Deterministic for (entities, seed, today); `today` defaults to
    today in Beijing (publishing.clock) and bounds every event date. progress(kind, rows_written) is called every
    50,000 rows of a kind and once at its end.
    """
    if entities < 1:
        raise ValueError("entities must be at least 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gen = _Generator(out, entities, seed, today or clock.today(), progress)
    gen.plan_blacklist()
    credit_mark, return_pledge = gen.write_marks_and_pledges()
    penalty = gen.write_penalties()
    blacklist = gen.write_blacklist()
    return {
        "blacklist": blacklist,
        "penalty": penalty,
        "credit_mark": credit_mark,
        "return_pledge": return_pledge,
    }
