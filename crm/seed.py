"""Deterministic demo data: users, customers and a year of activity that tells a sales story.

Same (seed, as_of, scale, locale) gives the same rows, byte for byte, except the bcrypt salt of
the one password hash. The story (SPEC §1): reps differ in skill, sales follow the seasons,
overdue complaints hurt satisfaction, some customers churn, the pyramid narrows from leads to
strategic accounts, new customers arrive all year, and every rep has follow-ups due on `as_of`.
"""

from __future__ import annotations

import os
import random
import secrets
import time as wall
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import accumulate
from pathlib import Path
from typing import Any, Literal

import bcrypt
from faker import Faker
from sqlalchemy import Connection, Engine, Index, Table, func, insert, inspect, select
from sqlalchemy.orm import Session

from crm import audit, summaries
from crm.access import Actor
from crm.db import WRITE_OPTION
from crm.errors import CrmError
from crm.models import (
    AttitudeScore,
    Base,
    Complaint,
    Contact,
    Customer,
    CustomerKind,
    CustomerSize,
    CustomerStatus,
    Interaction,
    InteractionKind,
    Opportunity,
    Order,
    Outcome,
    Product,
    Role,
    Severity,
    Source,
    SurveyResponse,
    Target,
    Tier,
    User,
)
from crm.settings import DATA_DIR

ScaleName = Literal["demo", "large", "tiny", "growth10k", "growth100k"]
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ScaleSpec:
    """How much data one scale generates; every table count below is exact."""

    teams: int
    reps_per_team: int
    customers: int
    interactions: int
    orders: int
    survey_responses: int
    opportunities: int
    complaints: int
    # Faker draws per pool (names, streets, ...): recombined, so a few thousand cover 100,000 rows.
    name_pool: int

    @property
    def reps(self) -> int:
        return self.teams * self.reps_per_team

    @property
    def users(self) -> int:
        return 1 + self.teams + self.reps  # admin, one manager per team, reps


SCALES: dict[str, ScaleSpec] = {
    "tiny": ScaleSpec(2, 2, 60, 600, 200, 100, 60, 30, name_pool=120),
    "demo": ScaleSpec(2, 6, 1_500, 15_000, 4_500, 1_500, 750, 300, name_pool=800),
    # SPEC §8 "large": 200 reps in 20 teams of 10.
    "large": ScaleSpec(20, 10, 100_000, 1_000_000, 300_000, 100_000, 50_000, 20_000, name_pool=3_000),
    # Growth runs of `python -m crm bench --growth`: the same 200 reps with 1% and 10% of the history.
    "growth10k": ScaleSpec(20, 10, 1_000, 10_000, 3_000, 1_000, 500, 200, name_pool=800),
    "growth100k": ScaleSpec(20, 10, 10_000, 100_000, 30_000, 10_000, 5_000, 2_000, name_pool=2_000),
}
SUPPORTED_LOCALES = ("en_US", "zh_CN")
LANGUAGE_BY_LOCALE = {"en_US": "en", "zh_CN": "zh-CN"}
CREDENTIALS_PATH = DATA_DIR / "demo_credentials.txt"
CREDENTIALS_MODE = 0o600
# 18 random bytes -> 24 URL-safe characters.
GENERATED_PASSWORD_BYTES = 18
BCRYPT_MAX_BYTES = 72

# Calendar: 12 full months before as_of's month, plus the current month up to the day before as_of.
HISTORY_MONTHS = 12
TARGET_MONTHS = HISTORY_MONTHS + 1  # the 12 full months and the current one
ATTITUDE_MONTHS = HISTORY_MONTHS  # managers score a month once it is over
# Yearly curve: Chinese New Year dip in February, summer-holiday dip in August, Q4 peak.
MONTH_SEASON = {1: 0.8, 2: 0.6, 3: 0.95, 4: 1.0, 5: 1.0, 6: 1.05, 7: 0.95, 8: 0.72, 9: 1.05, 10: 1.1, 11: 1.25, 12: 1.4}
WEEKDAY_ACTIVITY = (1.0, 1.0, 1.0, 1.0, 0.95, 0.15, 0.05)  # Monday .. Sunday
EXISTING_CUSTOMER_MAX_AGE_DAYS = 3 * 365
USER_MAX_AGE_DAYS = 1_000
HISTORY_ORDER_MAX_AGE_DAYS = 330

# Customer pyramid. New customers are created during the year; a quarter of them convert.
NEW_CUSTOMER_SHARE = 0.30
NEW_TIER_SHARES = {Tier.LEAD: 0.55, Tier.PROSPECT: 0.20, Tier.CUSTOMER: 0.25}
EXISTING_TIER_SHARES = {
    Tier.LEAD: 0.34,
    Tier.PROSPECT: 0.27,
    Tier.CUSTOMER: 0.21,
    Tier.KEY: 0.125,
    Tier.STRATEGIC: 0.055,
}
TIERS = tuple(Tier)
LEAD, PROSPECT, CUSTOMER, KEY, STRATEGIC = range(len(TIERS))
POOL_SHARE = 0.02  # unassigned leads (公海)
DELETED_SHARE = 0.005  # leads in the recycle bin
COMPANY_SHARE = 0.80
SECOND_CONTACT_SHARE = 0.30
CHURN_BASE_RATE = 0.10  # scaled by (1.6 - skill): weak reps lose more customers
CHURN_LOST_SHARE = 0.55  # the rest stay "active" and show up as at-risk
CHURN_EARLIEST_DAY = 45
CHURN_LATEST_DAYS_BEFORE_AS_OF = 70  # churned customers are silent for more than 60 days
CONVERTED_LATEST_DAYS_BEFORE_AS_OF = 8
SOURCE_WEIGHTS = {
    Source.EXHIBITION: 0.18,
    Source.REFERRAL: 0.22,
    Source.WEBSITE: 0.25,
    Source.COLD_CALL: 0.17,
    Source.EVENT: 0.10,
    Source.OTHER: 0.08,
}
SIZE_SHARES_BY_TIER = (  # small, medium, large
    (0.55, 0.33, 0.12),
    (0.50, 0.35, 0.15),
    (0.45, 0.38, 0.17),
    (0.25, 0.45, 0.30),
    (0.05, 0.35, 0.60),
)
SIZES = (CustomerSize.SMALL, CustomerSize.MEDIUM, CustomerSize.LARGE)
# Relative activity per tier: interactions, orders, survey responses.
INTERACTION_TIER_WEIGHT = (0.6, 1.2, 2.0, 3.5, 5.0)
ORDER_TIER_WEIGHT = (0.0, 0.0, 1.0, 3.0, 7.0)
SURVEY_TIER_WEIGHT = (0.0, 0.4, 1.0, 1.6, 2.0)

# Interactions.
VISIT_SHARE_BASE, VISIT_SHARE_SKILL = 0.35, 0.20
OTHER_KINDS = (InteractionKind.CALL, InteractionKind.EMAIL, InteractionKind.MEETING, InteractionKind.MESSAGE)
OTHER_KIND_CUM = tuple(accumulate((0.62, 0.14, 0.12, 0.12)))
POSITIVE_BASE, POSITIVE_SKILL = 0.30, 0.25
NEGATIVE_BASE, NEGATIVE_SKILL = 0.16, 0.10
CHURN_NEGATIVE_DAYS, CHURN_NEGATIVE_SHARE = 30, 0.5
FOLLOW_UP_RECENT_DAYS = 30  # only a recent last contact carries an open follow-up
# Shares of recent last contacts whose follow-up is due today, overdue, or ahead; the rest have none.
FOLLOW_UP_DUE_TODAY, FOLLOW_UP_OVERDUE, FOLLOW_UP_FUTURE = 0.10, 0.15, 0.35
FOLLOW_UP_MAX_AHEAD_DAYS = 14
FOLLOW_UP_MAX_OVERDUE_DAYS = 10
NOTES_SHARE = 0.7

# Opportunities.
PROSPECTING_SHARE, ENGAGING_SHARE = 0.14, 0.16
WIN_BASE, WIN_SKILL = 0.30, 0.45
NO_CUSTOMER_SHARE = 0.25  # of prospecting deals and of lost ones with no engagement
LOST_BEFORE_ENGAGING_SHARE = 0.35
DISCOUNT_RANGE = (0.82, 1.0)
AMOUNT_BASE, AMOUNT_SKILL = 0.85, 0.30
ORDER_BASE, ORDER_SKILL = 0.6, 0.8

# Complaints: SLA hours by severity (SPEC §3), state shares.
SLA_HOURS = {Severity.HIGH: 24, Severity.MEDIUM: 72, Severity.LOW: 168}
SEVERITY_WEIGHTS = {Severity.HIGH: 0.2, Severity.MEDIUM: 0.5, Severity.LOW: 0.3}
CATEGORY_WEIGHTS = {"quality": 0.35, "delivery": 0.25, "service": 0.20, "billing": 0.12, "other": 0.08}
OVERDUE_OPEN_SHARE = 0.03
OPEN_NOT_DUE_SHARE = 0.02
LATE_BASE, LATE_SKILL = 0.45, 0.38
SATISFIED_ON_TIME, SATISFIED_LATE = 0.85, 0.40
RESOLVED_OPEN_MIN_DAYS_BEFORE_AS_OF = 8

# Survey responses.
COMPLAINT_SURVEY_SHARE = 0.15  # follow-up surveys (回访) after a complaint
CSAT_BASE, CSAT_SKILL, CSAT_TIER_BONUS, CSAT_COMPLAINT_PENALTY, CSAT_SPREAD = 2.7, 1.7, 0.15, 1.4, 0.75
DIMENSION_SHARE, RECOMMEND_SHARE, COMMENT_SHARE = 0.9, 0.85, 0.25

# Targets and attitude.
TARGET_TEAM_WEIGHT = 0.7  # a target blends the team's typical month with the rep's own
TARGET_NOISE = (0.92, 1.08)
ATTITUDE_BASE, ATTITUDE_SKILL, ATTITUDE_TRAIT_SPREAD, ATTITUDE_MONTH_SPREAD = 52.0, 40.0, 5.0, 4.0
ATTITUDE_COMMENT_SHARE = 0.2

# Loading.
CHUNK_ROWS = 10_000
BULK_MODELS: tuple[type[Base], ...] = (Customer, Contact, Interaction, Opportunity, Order, SurveyResponse, Complaint)
# Tables whose ids the seed assigns (others reference them), so PostgreSQL sequences are moved past them.
EXPLICIT_ID_MODELS: tuple[type[Base], ...] = (User, Product, Customer, Opportunity)


@dataclass(frozen=True)
class ProductSpec:
    name: str
    series: str
    list_price: int
    min_quantity: int
    max_quantity: int


# The Maven sample's catalogue, so an import of that dataset lands on the same products.
PRODUCTS = (
    ProductSpec("GTX Basic", "GTX", 550, 1, 8),
    ProductSpec("GTX Pro", "GTX", 4821, 1, 4),
    ProductSpec("MG Special", "MG", 55, 10, 60),
    ProductSpec("MG Advanced", "MG", 3393, 1, 4),
    ProductSpec("GTX Plus Basic", "GTX", 1096, 1, 6),
    ProductSpec("GTX Plus Pro", "GTX", 5482, 1, 3),
    ProductSpec("GTK 500", "GTK", 26768, 1, 2),
)
PRODUCT_WEIGHTS_BY_TIER = (  # lead, prospect and customer share the small-account mix
    (0.25, 0.12, 0.25, 0.12, 0.16, 0.08, 0.02),
    (0.25, 0.12, 0.25, 0.12, 0.16, 0.08, 0.02),
    (0.25, 0.12, 0.25, 0.12, 0.16, 0.08, 0.02),
    (0.15, 0.18, 0.12, 0.18, 0.15, 0.16, 0.06),
    (0.08, 0.20, 0.05, 0.20, 0.12, 0.22, 0.13),
)


@dataclass(frozen=True)
class SeedResult:
    """What one seed run wrote."""

    scale: str
    locale: str
    seed: int
    as_of: date
    counts: Mapping[str, int]  # table name -> rows inserted, in load order
    usernames: tuple[str, ...]
    elapsed_seconds: float


class SeedError(CrmError):
    """The database cannot be seeded as asked (it already holds data, or the input is invalid)."""


# --- localized text -------------------------------------------------------------------------------


@dataclass(frozen=True)
class City:
    province: str
    city: str
    area_code: str


@dataclass(frozen=True)
class LocaleText:
    """Everything the seed writes in a language other than codes."""

    admin_name: str
    regions: tuple[tuple[str, tuple[City, ...]], ...]
    industries: tuple[tuple[str, tuple[str, ...]], ...]  # industry -> words used in company names
    company_suffixes: tuple[str, ...]
    company_adjectives: tuple[str, ...]
    contact_titles: tuple[str, ...]
    subjects: Mapping[InteractionKind, tuple[str, ...]]
    notes: Mapping[Outcome, tuple[str, ...]]
    lost_reasons: tuple[str, ...]
    complaints: Mapping[str, tuple[str, ...]]
    resolutions: tuple[str, ...]
    survey_comments: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # bad, so-so, good
    attitude_comments: tuple[str, ...]
    customer_notes: tuple[str, ...]
    deal_title: str  # format with product, quantity


def _cities(*rows: tuple[str, str, str]) -> tuple[City, ...]:
    return tuple(City(*row) for row in rows)


EN_TEXT = LocaleText(
    admin_name="Administrator",
    regions=(
        (
            "North",
            _cities(
                ("Minnesota", "Minneapolis", "612"),
                ("Minnesota", "Saint Paul", "651"),
                ("Wisconsin", "Milwaukee", "414"),
                ("Wisconsin", "Madison", "608"),
                ("Michigan", "Detroit", "313"),
                ("Michigan", "Grand Rapids", "616"),
                ("North Dakota", "Fargo", "701"),
                ("Illinois", "Chicago", "312"),
            ),
        ),
        (
            "South",
            _cities(
                ("Texas", "Houston", "713"),
                ("Texas", "Dallas", "214"),
                ("Texas", "Austin", "512"),
                ("Georgia", "Atlanta", "404"),
                ("Florida", "Miami", "305"),
                ("Florida", "Tampa", "813"),
                ("Tennessee", "Nashville", "615"),
                ("North Carolina", "Charlotte", "704"),
            ),
        ),
        (
            "East",
            _cities(
                ("New York", "New York", "212"),
                ("New York", "Buffalo", "716"),
                ("Massachusetts", "Boston", "617"),
                ("Pennsylvania", "Philadelphia", "215"),
                ("Pennsylvania", "Pittsburgh", "412"),
                ("New Jersey", "Newark", "973"),
                ("Maryland", "Baltimore", "410"),
                ("Virginia", "Richmond", "804"),
            ),
        ),
        (
            "West",
            _cities(
                ("California", "Los Angeles", "213"),
                ("California", "San Francisco", "415"),
                ("California", "San Diego", "619"),
                ("Washington", "Seattle", "206"),
                ("Oregon", "Portland", "503"),
                ("Nevada", "Las Vegas", "702"),
                ("Arizona", "Phoenix", "602"),
                ("Utah", "Salt Lake City", "801"),
            ),
        ),
        (
            "Central",
            _cities(
                ("Missouri", "Kansas City", "816"),
                ("Missouri", "St. Louis", "314"),
                ("Colorado", "Denver", "303"),
                ("Nebraska", "Omaha", "402"),
                ("Oklahoma", "Oklahoma City", "405"),
                ("Kansas", "Wichita", "316"),
                ("Iowa", "Des Moines", "515"),
                ("Ohio", "Columbus", "614"),
            ),
        ),
    ),
    industries=(
        ("Manufacturing", ("Manufacturing", "Industries", "Machinery", "Fabrication")),
        ("Retail", ("Retail", "Stores", "Outlet", "Trading")),
        ("Technology", ("Systems", "Software", "Technologies", "Labs")),
        ("Healthcare", ("Health", "Medical", "Care")),
        ("Finance", ("Capital", "Financial", "Partners")),
        ("Logistics", ("Logistics", "Freight", "Transport")),
        ("Education", ("Learning", "Academy", "Education")),
        ("Construction", ("Construction", "Builders", "Engineering")),
        ("Food & Beverage", ("Foods", "Beverages", "Kitchen")),
        ("Energy", ("Energy", "Power", "Solar")),
    ),
    company_suffixes=("Inc.", "LLC", "Co.", "Group", "Ltd.", "Corp."),
    company_adjectives=(
        "Blue",
        "Summit",
        "Pioneer",
        "Evergreen",
        "Silver",
        "Northstar",
        "Granite",
        "Harbor",
        "Liberty",
        "Prairie",
        "Cedar",
        "Atlas",
        "Beacon",
        "Crescent",
        "Frontier",
        "Keystone",
    ),
    contact_titles=(
        "Purchasing Manager",
        "CEO",
        "Operations Director",
        "IT Manager",
        "Finance Director",
        "Office Manager",
        "Procurement Specialist",
    ),
    subjects={
        InteractionKind.VISIT: (
            "Site visit",
            "Product demo",
            "Quarterly business review",
            "Contract negotiation",
            "Relationship visit",
        ),
        InteractionKind.CALL: ("Follow-up call", "Price inquiry", "Order status check", "Renewal reminder"),
        InteractionKind.EMAIL: ("Quotation sent", "Proposal follow-up", "Meeting summary"),
        InteractionKind.MEETING: ("Technical workshop", "Executive meeting", "Kick-off meeting"),
        InteractionKind.MESSAGE: ("Quick check-in", "Delivery update", "Holiday greetings"),
    },
    notes={
        Outcome.POSITIVE: (
            "Customer wants to expand the order.",
            "Agreed on next steps and a trial.",
            "Very satisfied with the last delivery.",
        ),
        Outcome.NEUTRAL: (
            "Customer is comparing offers.",
            "Budget decision expected next quarter.",
            "Sent additional product information.",
        ),
        Outcome.NEGATIVE: (
            "Customer unhappy with pricing.",
            "Complained about delivery delays.",
            "Decision maker unavailable; deal stalled.",
        ),
    },
    lost_reasons=("Price too high", "Chose a competitor", "No budget", "No decision", "Timing not right"),
    complaints={
        "quality": ("Product failed after two weeks of use.", "Batch arrived with defects."),
        "delivery": ("Delivery arrived a week late.", "Wrong items were shipped."),
        "service": ("No answer from support for several days.", "Installation engineer was unprofessional."),
        "billing": ("Invoice amount does not match the contract.", "Charged twice for one order."),
        "other": ("Unhappy with how we communicate.", "Requested contract changes were ignored."),
    },
    resolutions=(
        "Replaced the product.",
        "Issued a partial refund.",
        "Re-shipped the order.",
        "Corrected the invoice.",
        "Explained and apologised; customer accepted.",
    ),
    survey_comments=(
        ("Very disappointed with the after-sales service.", "Problems are not solved in time."),
        ("OK overall.", "The price could be better."),
        ("Great service, thank you!", "Fast delivery and good quality."),
    ),
    attitude_comments=("Proactive and reliable.", "Needs to update CRM records on time.", "Good team player."),
    customer_notes=("Prefers contact by phone.", "Annual budget is set in Q4.", "Met at the trade fair."),
    deal_title="{quantity} × {product}",
)

ZH_TEXT = LocaleText(
    admin_name="系统管理员",
    regions=(
        (
            "华北",
            _cities(
                ("北京市", "北京", "010"),
                ("天津市", "天津", "022"),
                ("河北省", "石家庄", "0311"),
                ("河北省", "唐山", "0315"),
                ("山西省", "太原", "0351"),
                ("内蒙古自治区", "呼和浩特", "0471"),
                ("河北省", "保定", "0312"),
                ("山西省", "大同", "0352"),
            ),
        ),
        (
            "华南",
            _cities(
                ("广东省", "广州", "020"),
                ("广东省", "深圳", "0755"),
                ("广东省", "东莞", "0769"),
                ("广东省", "佛山", "0757"),
                ("广西壮族自治区", "南宁", "0771"),
                ("海南省", "海口", "0898"),
                ("福建省", "厦门", "0592"),
                ("福建省", "福州", "0591"),
            ),
        ),
        (
            "华东",
            _cities(
                ("上海市", "上海", "021"),
                ("江苏省", "南京", "025"),
                ("江苏省", "苏州", "0512"),
                ("浙江省", "杭州", "0571"),
                ("浙江省", "宁波", "0574"),
                ("山东省", "济南", "0531"),
                ("山东省", "青岛", "0532"),
                ("安徽省", "合肥", "0551"),
            ),
        ),
        (
            "西南",
            _cities(
                ("四川省", "成都", "028"),
                ("重庆市", "重庆", "023"),
                ("云南省", "昆明", "0871"),
                ("贵州省", "贵阳", "0851"),
                ("四川省", "绵阳", "0816"),
                ("云南省", "大理", "0872"),
                ("西藏自治区", "拉萨", "0891"),
                ("贵州省", "遵义", "0851"),
            ),
        ),
        (
            "华中",
            _cities(
                ("湖北省", "武汉", "027"),
                ("湖南省", "长沙", "0731"),
                ("河南省", "郑州", "0371"),
                ("江西省", "南昌", "0791"),
                ("湖北省", "宜昌", "0717"),
                ("湖南省", "株洲", "0731"),
                ("河南省", "洛阳", "0379"),
                ("江西省", "九江", "0792"),
            ),
        ),
    ),
    industries=(
        ("制造业", ("机械", "制造", "重工", "精密")),
        ("零售", ("商贸", "百货", "贸易", "连锁")),
        ("信息技术", ("科技", "软件", "信息", "网络")),
        ("医疗健康", ("医疗", "健康", "生物", "医药")),
        ("金融", ("投资", "金融", "资本")),
        ("物流", ("物流", "运输", "供应链")),
        ("教育", ("教育", "培训", "文化")),
        ("建筑", ("建设", "建筑", "工程")),
        ("食品饮料", ("食品", "饮料", "餐饮")),
        ("能源", ("能源", "电力", "新能源")),
    ),
    company_suffixes=("有限公司", "股份有限公司", "集团有限公司", "有限责任公司"),
    company_adjectives=(),
    contact_titles=("采购经理", "总经理", "运营总监", "信息部经理", "财务总监", "行政主管", "采购专员"),
    subjects={
        InteractionKind.VISIT: ("上门拜访", "产品演示", "季度业务回顾", "合同洽谈", "客情维护"),
        InteractionKind.CALL: ("电话回访", "询价沟通", "订单进度确认", "续约提醒"),
        InteractionKind.EMAIL: ("发送报价", "方案跟进", "会议纪要"),
        InteractionKind.MEETING: ("技术交流会", "高层会谈", "项目启动会"),
        InteractionKind.MESSAGE: ("微信沟通", "发货通知", "节日问候"),
    },
    notes={
        Outcome.POSITIVE: ("客户有意扩大采购。", "双方确认下一步试用计划。", "客户对上次交付非常满意。"),
        Outcome.NEUTRAL: ("客户正在比较多家报价。", "预算预计下季度确定。", "已补充发送产品资料。"),
        Outcome.NEGATIVE: ("客户对价格不满意。", "客户抱怨交货延迟。", "决策人无法联系，进展停滞。"),
    },
    lost_reasons=("价格过高", "选择了竞争对手", "预算不足", "未做决策", "时机不成熟"),
    complaints={
        "quality": ("产品使用两周后出现故障。", "到货批次存在质量缺陷。"),
        "delivery": ("交货延迟一周。", "发错货物。"),
        "service": ("售后多日无人回复。", "安装工程师服务不专业。"),
        "billing": ("发票金额与合同不符。", "同一订单被重复扣款。"),
        "other": ("对沟通方式不满意。", "合同变更请求未被处理。"),
    },
    resolutions=("已更换产品。", "已部分退款。", "已重新发货。", "已更正发票。", "已解释并致歉，客户接受。"),
    survey_comments=(
        ("售后服务令人失望。", "问题没有及时解决。"),
        ("总体还可以。", "价格还可以再优惠些。"),
        ("服务很好，谢谢！", "交货快，质量好。"),
    ),
    attitude_comments=("工作积极主动。", "需及时更新客户记录。", "团队协作良好。"),
    customer_notes=("偏好电话联系。", "年度预算在第四季度确定。", "展会上结识。"),
    deal_title="{product} 采购{quantity}套",
)
LOCALE_TEXT = {"en_US": EN_TEXT, "zh_CN": ZH_TEXT}
ZH_TEAM_NUMBERS = "一二三四五六七八九十"
ZH_MOBILE_PREFIXES = ("130", "131", "133", "135", "136", "137", "138", "139", "150", "151", "158", "186", "188", "189")
EMAIL_MAILBOXES = ("info", "sales", "contact", "service", "office")


# --- public helpers -------------------------------------------------------------------------------


def generate_password() -> str:
    """Return a random demo password (24 URL-safe characters)."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def write_credentials(path: Path, usernames: Sequence[str], password: str) -> None:
    """Write the demo logins to a file only its owner can read (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Create with 0600 so the password is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, CREDENTIALS_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# CRM demo logins: every user below has the same password. Keep this file private.\n")
        handle.write(f"# password: {password}\n")
        for username in usernames:
            handle.write(f"{username}\t{password}\n")
    os.chmod(path, CREDENTIALS_MODE)  # an existing file keeps its old mode through O_CREAT


def usernames_for(scale: ScaleName) -> tuple[str, ...]:
    """Return the usernames a scale creates: admin, managers, reps."""
    spec = SCALES[scale]
    return (
        "admin",
        *(f"manager{team + 1}" for team in range(spec.teams)),
        *(f"rep{rep + 1}" for rep in range(spec.reps)),
    )


def expected_counts(scale: ScaleName) -> dict[str, int]:
    """Return the exact rows per table that seeding an empty database at this scale inserts."""
    spec = SCALES[scale]
    companies = round(spec.customers * COMPANY_SHARE)
    return {
        "users": spec.users,
        "products": len(PRODUCTS),
        "customers": spec.customers,
        "contacts": companies + round(companies * SECOND_CONTACT_SHARE),
        "opportunities": spec.opportunities,
        "orders": spec.orders,
        "interactions": spec.interactions,
        "complaints": spec.complaints,
        "survey_responses": spec.survey_responses,
        "targets": spec.reps * TARGET_MONTHS,
        "attitude_scores": spec.reps * ATTITUDE_MONTHS,
        "audit_events": 1,
    }


# --- calendar and sampling ------------------------------------------------------------------------


def _add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _day_weight(day: date) -> float:
    return MONTH_SEASON[day.month] * WEEKDAY_ACTIVITY[day.weekday()]


class _Calendar:
    """Day indexes 0..days-1 from the first history month to the day before as_of."""

    def __init__(self, as_of: date) -> None:
        self.as_of = as_of
        self.midnight = datetime.combine(as_of, time.min)
        current = as_of.replace(day=1)
        self.start = _add_months(current, -HISTORY_MONTHS)
        self.days = (as_of - self.start).days
        self.dates = [self.start + timedelta(days=i) for i in range(self.days)]
        self.month_starts = [_add_months(self.start, m) for m in range(TARGET_MONTHS)]
        self.month_of_day = [(d.year - self.start.year) * 12 + d.month - self.start.month for d in self.dates]
        self.weights = [_day_weight(d) for d in self.dates]
        self.cum = list(accumulate(self.weights))
        # How a whole calendar month weighs in the year, for targets of the current (partial) month too.
        self.month_weight = [
            sum(_day_weight(m + timedelta(days=i)) for i in range((_add_months(m, 1) - m).days))
            for m in self.month_starts
        ]


class _Sampler:
    """Draw seasonal days (more in Q4, fewer on weekends, in February and August) in a range."""

    def __init__(self, calendar: _Calendar, rng: random.Random) -> None:
        self.cum = calendar.cum
        self.rnd = rng.random

    def day(self, lo: int, hi: int) -> int:
        cum = self.cum
        base = cum[lo - 1] if lo > 0 else 0.0
        x = base + self.rnd() * (cum[hi] - base)
        return min(bisect_right(cum, x, lo, hi), hi)


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split total into integers proportional to weights (largest remainder, ties by position)."""
    weight_sum = sum(weights)
    if total <= 0 or weight_sum <= 0:
        return [0] * len(weights)
    quotas = [total * w / weight_sum for w in weights]
    counts = [int(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _stream(seed: int, name: str) -> random.Random:
    # One random stream per stage: a change in one table's generator leaves the others as they were.
    return random.Random(f"crm-seed:{seed}:{name}")


def _pick(rng: random.Random, cum: Sequence[float]) -> int:
    return min(bisect_right(cum, rng.random() * cum[-1]), len(cum) - 1)


def _money(value: float) -> Decimal:
    return Decimal(round(value * 100)).scaleb(-2)


def _clamp(value: float, lo: int, hi: int) -> int:
    return max(lo, min(hi, round(value)))


def _at(day: date, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, minute // 60, minute % 60)


# --- generation state -----------------------------------------------------------------------------


@dataclass
class _Rep:
    index: int
    id: int
    username: str
    team: int
    region: int
    manager_id: int
    skill: float
    customers: list[_Cust]


@dataclass(slots=True)
class _Cust:
    index: int
    id: int
    owner: int  # rep index, -1 for the unassigned pool
    tier: int
    is_new: bool
    start: int  # first day index with activity
    end: int  # last day index with activity (the churn day for churned customers)
    created_at: datetime
    region: int
    city: City
    address: str
    name: str
    person: bool
    deleted: bool
    lost: bool
    history_order: bool = False
    bad_day: int = -1  # first day of a complaint that went overdue; -1 when none

    @property
    def transacting(self) -> bool:
        return self.tier >= CUSTOMER


@dataclass(frozen=True)
class _Pools:
    """Names drawn from Faker once and recombined (Faker is too slow for 100,000 rows)."""

    first_names: list[str]
    last_names: list[str]
    streets: list[str]
    districts: list[str]
    company_prefixes: list[str]
    domain_words: list[str]
    email_domains: list[str]
    user_names: list[str]


def _make_pools(locale: str, seed: int, size: int) -> _Pools:
    fake = Faker(locale)
    fake.seed_instance(seed)

    def draw(fn: Callable[[], str], count: int = size) -> list[str]:
        return list(dict.fromkeys(fn() for _ in range(count)))

    zh = locale == "zh_CN"
    return _Pools(
        first_names=draw(fake.first_name),
        last_names=draw(fake.last_name),
        streets=draw(fake.street_name),
        districts=draw(fake.district, max(size // 4, 10)) if zh else [],
        company_prefixes=draw(fake.company_prefix, size // 2) if zh else [],
        domain_words=draw(fake.domain_word, max(size // 2, 10)),
        email_domains=draw(fake.free_email_domain, 50),
        user_names=draw(fake.user_name, max(size // 2, 10)),
    )


class _Namer:
    """Unique company names, person names, addresses and phone numbers in one locale."""

    def __init__(self, locale: str, pools: _Pools, rng: random.Random) -> None:
        self.zh = locale == "zh_CN"
        self.text = LOCALE_TEXT[locale]
        self.pools = pools
        self.rng = rng
        self.taken: set[str] = set()

    def person(self) -> str:
        first, last = self.rng.choice(self.pools.first_names), self.rng.choice(self.pools.last_names)
        return f"{last}{first}" if self.zh else f"{first} {last}"

    def _company_once(self, industry: int, city: City) -> str:
        rng, text, pools = self.rng, self.text, self.pools
        word = rng.choice(text.industries[industry][1])
        suffix = rng.choice(text.company_suffixes)
        u = rng.random()
        if self.zh:
            prefix = rng.choice(pools.company_prefixes)
            if u < 0.5:
                return f"{city.city}{prefix}{word}{suffix}"
            if u < 0.85:
                return f"{prefix}{rng.choice(pools.company_prefixes)}{word}{suffix}"
            return f"{prefix}{word}{suffix}"
        last = rng.choice(pools.last_names)
        if u < 0.4:
            return f"{last} {word} {suffix}"
        if u < 0.65:
            return f"{last} & {rng.choice(pools.last_names)} {rng.choice(('LLC', 'Partners', 'Group'))}"
        if u < 0.85:
            return f"{rng.choice(text.company_adjectives)} {word} {suffix}"
        return f"{city.city} {word} {suffix}"

    def company(self, industry: int, city: City, index: int) -> str:
        for _ in range(8):
            name = self._company_once(industry, city)
            if name.lower() not in self.taken:
                break
        else:
            name = f"{name}{city.city}分公司" if self.zh else f"{name} ({city.city})"
            if name.lower() in self.taken:
                name = f"{name} {index}"
        self.taken.add(name.lower())
        return name

    def address(self, city: City) -> str:
        rng = self.rng
        if self.zh:
            return f"{rng.choice(self.pools.districts)}区{rng.choice(self.pools.streets)}{rng.randint(1, 999)}号"
        return f"{rng.randint(10, 9999)} {rng.choice(self.pools.streets)}"

    def mobile(self) -> str:
        rng = self.rng
        if self.zh:
            return f"{rng.choice(ZH_MOBILE_PREFIXES)}{rng.randint(0, 99_999_999):08d}"
        return f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"

    def landline(self, city: City) -> str:
        rng = self.rng
        if self.zh:
            return f"{city.area_code}-{rng.randint(20_000_000, 89_999_999)}"
        return f"({city.area_code}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"

    def domain(self, name: str) -> str:
        if self.zh:
            return f"{self.rng.choice(self.pools.domain_words)}{self.rng.randint(1, 99)}.com.cn"
        letters = "".join(ch for ch in name.split(" ")[0].lower() if ch.isalnum())
        return f"{letters}{self.rng.choice(self.pools.domain_words)}.com"

    def personal_email(self) -> str:
        rng = self.rng
        return f"{rng.choice(self.pools.user_names)}{rng.randint(1, 999)}@{rng.choice(self.pools.email_domains)}"


@dataclass
class _Tally:
    """Actuals per rep and month (index into the calendar's months) that targets are built from."""

    revenue: list[list[float]]
    new_customers: list[list[int]]
    visits: list[list[int]]

    @classmethod
    def empty(cls, reps: int) -> _Tally:
        def grid() -> list[list[Any]]:
            return [[0] * TARGET_MONTHS for _ in range(reps)]

        return cls(revenue=grid(), new_customers=grid(), visits=grid())


@dataclass(frozen=True)
class _WonOrder:
    opportunity_id: int
    day: int
    amount: Decimal
    product_id: int
    quantity: int


class _Context:
    """Everything the table generators share."""

    def __init__(self, *, spec: ScaleSpec, locale: str, seed: int, as_of: date, password_hash: str) -> None:
        self.spec = spec
        self.locale = locale
        self.seed = seed
        self.text = LOCALE_TEXT[locale]
        self.cal = _Calendar(as_of)
        self.password_hash = password_hash
        self.reps: list[_Rep] = []
        self.customers: list[_Cust] = []
        self.product_ids: list[int] = []
        self.admin_id = 0
        self.manager_ids: list[int] = []
        self.won_orders: dict[int, list[_WonOrder]] = {}
        self.tally = _Tally.empty(spec.reps)
        self.complaint_rows: list[dict[str, Any]] = []
        self.region_names = [name for name, _ in self.text.regions]

    def rng(self, name: str) -> random.Random:
        return _stream(self.seed, name)


# --- generators -----------------------------------------------------------------------------------


def _team_layout(spec: ScaleSpec, text: LocaleText, zh: bool) -> list[tuple[str, int]]:
    """Return (team name, region index) per team: teams spread evenly over the regions."""
    regions = min(len(text.regions), spec.teams)
    per_region = -(-spec.teams // regions)
    layout = []
    for team in range(spec.teams):
        region, number = divmod(team, per_region)
        name = text.regions[region][0]
        if per_region > 1:
            name = f"{name}{ZH_TEAM_NUMBERS[number]}组" if zh else f"{name} {number + 1}"
        layout.append((name, region))
    return layout


def _users(ctx: _Context, pools: _Pools, base_id: int) -> list[dict[str, Any]]:
    rng = ctx.rng("users")
    spec, cal = ctx.spec, ctx.cal
    namer = _Namer(ctx.locale, pools, rng)
    language = LANGUAGE_BY_LOCALE[ctx.locale]
    display_names: list[str] = []
    while len(display_names) < spec.teams + spec.reps:
        name = namer.person()
        if name not in display_names:
            display_names.append(name)
    names = iter(display_names)
    layout = _team_layout(spec, ctx.text, ctx.locale == "zh_CN")

    def row(
        user_id: int,
        username: str,
        display: str,
        role: Role,
        team: str | None,
        region: str | None,
        manager_id: int | None,
    ) -> dict[str, Any]:
        hired = cal.start - timedelta(days=rng.randint(30, USER_MAX_AGE_DAYS))
        return {
            "id": user_id,
            "username": username,
            "display_name": display,
            "email": f"{username}@example.com",
            "role": role.value,
            "team": team,
            "region": region,
            "manager_id": manager_id,
            "active": True,
            # One bcrypt hash per run, shared by every seeded user: hashing 200 times at ~250 ms each
            # would take most of a minute, and every demo user has the same password anyway.
            "password_hash": ctx.password_hash,
            "language": language,
            "failed_logins": 0,
            "created_at": _at(hired, 9 * 60),
        }

    next_id = base_id + 1
    ctx.admin_id = next_id
    rows = [row(next_id, "admin", ctx.text.admin_name, Role.ADMIN, None, None, None)]
    for team, (team_name, region) in enumerate(layout):
        next_id += 1
        ctx.manager_ids.append(next_id)
        rows.append(
            row(next_id, f"manager{team + 1}", next(names), Role.MANAGER, team_name, ctx.region_names[region], None)
        )
    # Skill spread evenly over 0..1 so the leaderboard covers grades A to D, shuffled across teams.
    skills = [(i + 0.5) / spec.reps for i in range(spec.reps)]
    rng.shuffle(skills)
    for index in range(spec.reps):
        team = index // spec.reps_per_team
        team_name, region = layout[team]
        next_id += 1
        username = f"rep{index + 1}"
        rows.append(
            row(next_id, username, next(names), Role.REP, team_name, ctx.region_names[region], ctx.manager_ids[team])
        )
        ctx.reps.append(_Rep(index, next_id, username, team, region, ctx.manager_ids[team], skills[index], []))
    return rows


def _products(ctx: _Context, existing: Mapping[str, int], base_id: int) -> list[dict[str, Any]]:
    rows = []
    next_id = base_id
    for product in PRODUCTS:
        if product.name in existing:
            ctx.product_ids.append(existing[product.name])
            continue
        next_id += 1
        ctx.product_ids.append(next_id)
        rows.append(
            {"id": next_id, "name": product.name, "series": product.series, "list_price": Decimal(product.list_price)}
        )
    return rows


def _plan_customers(ctx: _Context, rng: random.Random) -> list[tuple[bool, int]]:
    """Return (is_new, tier) per customer, shuffled, with exact counts per tier."""
    spec = ctx.spec
    new = round(spec.customers * NEW_CUSTOMER_SHARE)
    plan: list[tuple[bool, int]] = []
    for is_new, count, shares in ((True, new, NEW_TIER_SHARES), (False, spec.customers - new, EXISTING_TIER_SHARES)):
        counts = _apportion(count, list(shares.values()))
        for tier, tier_count in zip(shares, counts, strict=True):
            plan.extend([(is_new, TIERS.index(tier))] * tier_count)
    rng.shuffle(plan)
    return plan


def _customers(ctx: _Context, pools: _Pools, base_id: int) -> Iterator[dict[str, Any]]:
    rng = ctx.rng("customers")
    spec, cal, text, reps = ctx.spec, ctx.cal, ctx.text, ctx.reps
    namer = _Namer(ctx.locale, pools, rng)
    sampler = _Sampler(cal, rng)
    plan = _plan_customers(ctx, rng)
    pool_left = max(1, round(spec.customers * POOL_SHARE))
    deleted_left = round(spec.customers * DELETED_SHARE)
    companies = round(spec.customers * COMPANY_SHARE)
    # Persons are small accounts: every key and strategic account is a company.
    person_slots = [i for i, (_, tier) in enumerate(plan) if tier <= CUSTOMER]
    persons = set(rng.sample(person_slots, spec.customers - companies))
    any_rep_cum = list(accumulate([1.0] * len(reps)))
    # Converted new customers go mostly to skilled reps: they find and close more new business.
    skilled_cum = list(accumulate(0.4 + 1.2 * rep.skill for rep in reps))
    source_cum = list(accumulate(SOURCE_WEIGHTS.values()))
    sources = list(SOURCE_WEIGHTS)
    size_cums = [list(accumulate(shares)) for shares in SIZE_SHARES_BY_TIER]
    last_day = cal.days - 1
    for index, (is_new, tier) in enumerate(plan):
        pool = tier == LEAD and pool_left > 0
        pool_left -= pool
        deleted = not pool and not is_new and tier == LEAD and deleted_left > 0
        deleted_left -= deleted
        if pool:
            owner = -1
            region = rng.randrange(len(ctx.region_names))
        else:
            owner = _pick(rng, skilled_cum if is_new and tier >= CUSTOMER else any_rep_cum)
            region = reps[owner].region
        city = rng.choice(text.regions[region][1])
        if is_new:
            latest = last_day - CONVERTED_LATEST_DAYS_BEFORE_AS_OF if tier >= CUSTOMER else last_day
            start = sampler.day(0, max(latest, 0))
            created = _at(cal.dates[start], rng.randint(8 * 60, 17 * 60))
        else:
            start = 0
            created = _at(
                cal.start - timedelta(days=rng.randint(1, EXISTING_CUSTOMER_MAX_AGE_DAYS)), rng.randint(8 * 60, 17 * 60)
            )
        end, lost = last_day, False
        if tier >= CUSTOMER and not is_new and owner >= 0:
            churn_rate = CHURN_BASE_RATE * (1.6 - reps[owner].skill)
            latest_churn = last_day - CHURN_LATEST_DAYS_BEFORE_AS_OF
            if rng.random() < churn_rate and latest_churn > CHURN_EARLIEST_DAY:
                end = rng.randint(CHURN_EARLIEST_DAY, latest_churn)
                lost = rng.random() < CHURN_LOST_SHARE
        industry = rng.randrange(len(text.industries))
        person = index in persons
        customer_id = base_id + index + 1
        name = namer.person() if person else namer.company(industry, city, customer_id)
        address = namer.address(city)
        cust = _Cust(
            index,
            customer_id,
            owner,
            tier,
            is_new,
            start,
            end,
            created,
            region,
            city,
            address,
            name,
            person,
            deleted,
            lost,
        )
        ctx.customers.append(cust)
        if owner >= 0 and not deleted:
            reps[owner].customers.append(cust)
        updated, updated_by = created, None
        if lost:
            lost_day = min(end + rng.randint(30, 60), last_day)
            updated, updated_by = _at(cal.dates[lost_day], rng.randint(9 * 60, 18 * 60)), reps[owner].id
        deleted_at = _at(cal.dates[rng.randint(0, last_day)], 16 * 60) if deleted else None
        if deleted_at is not None and deleted_at < created:
            deleted_at = created + timedelta(hours=1)
        domain = None if person else namer.domain(name)
        yield {
            "id": customer_id,
            "code": f"C{customer_id:06d}",
            "name": name,
            "name_key": name.lower(),
            "kind": (CustomerKind.PERSON if person else CustomerKind.COMPANY).value,
            "industry": None if person else text.industries[industry][0],
            "region": ctx.region_names[region],
            "province": city.province,
            "city": city.city,
            "address": address,
            "size": None if person else SIZES[_pick(rng, size_cums[tier])].value,
            "tier": TIERS[tier].value,
            "status": (CustomerStatus.LOST if lost else CustomerStatus.ACTIVE).value,
            "source": sources[_pick(rng, source_cum)].value,
            "owner_id": reps[owner].id if owner >= 0 else None,
            "phone": namer.mobile() if person else namer.landline(city),
            "email": namer.personal_email() if person else f"{rng.choice(EMAIL_MAILBOXES)}@{domain}",
            "website": None if person or rng.random() < 0.4 else f"www.{domain}",
            "notes": rng.choice(text.customer_notes) if rng.random() < 0.15 else None,
            "created_at": created,
            "updated_at": updated,
            "updated_by_id": updated_by,
            "version": 1,
            "deleted_at": deleted_at,
        }


def _contacts(ctx: _Context, pools: _Pools) -> Iterator[dict[str, Any]]:
    rng = ctx.rng("contacts")
    namer = _Namer(ctx.locale, pools, rng)
    companies = [c for c in ctx.customers if not c.person]
    seconds = set(rng.sample(range(len(companies)), round(len(companies) * SECOND_CONTACT_SHARE)))
    for rank, cust in enumerate(companies):
        for primary in (True, False) if rank in seconds else (True,):
            birthday = None
            if rng.random() < 0.6:
                birthday = date(rng.randint(1960, 2000), rng.randint(1, 12), rng.randint(1, 28))
            yield {
                "customer_id": cust.id,
                "name": namer.person(),
                "title": rng.choice(ctx.text.contact_titles),
                "phone": namer.mobile(),
                "email": namer.personal_email(),
                "is_primary": primary,
                "birthday": birthday,
                "created_at": cust.created_at,
            }


def _choose_product(rng: random.Random, tier: int) -> int:
    return _pick(rng, list(accumulate(PRODUCT_WEIGHTS_BY_TIER[tier])))


def _deal(rng: random.Random, tier: int, skill: float) -> tuple[int, int, Decimal]:
    """Return (product index, quantity, amount) of a deal for a customer of this tier."""
    product = _choose_product(rng, tier)
    spec = PRODUCTS[product]
    quantity = rng.randint(spec.min_quantity, spec.max_quantity)
    if tier == STRATEGIC:
        quantity += rng.randint(0, spec.max_quantity)
    amount = spec.list_price * quantity * rng.uniform(*DISCOUNT_RANGE) * (AMOUNT_BASE + AMOUNT_SKILL * skill)
    return product, quantity, _money(amount)


def _weights_cum(customers: Sequence[_Cust], tier_weight: Sequence[float], days: int) -> list[float]:
    return list(accumulate(tier_weight[c.tier] * (c.end - c.start + 1) / days for c in customers))


def _opportunities(ctx: _Context, base_id: int) -> Iterator[dict[str, Any]]:
    rng = ctx.rng("opportunities")
    cal, text, reps = ctx.cal, ctx.text, ctx.reps
    sampler = _Sampler(cal, rng)
    last_day = cal.days - 1
    counts = _apportion(ctx.spec.opportunities, [(0.7 + 0.6 * r.skill) * len(r.customers) for r in reps])
    next_id = base_id
    for rep, count in zip(reps, counts, strict=True):
        buying = [c for c in rep.customers if c.transacting]
        buying_cum = _weights_cum(buying, ORDER_TIER_WEIGHT, cal.days)
        open_pool = [c for c in rep.customers if not c.lost and c.end == last_day]
        for _ in range(count):
            next_id += 1
            u = rng.random()
            if u < PROSPECTING_SHARE:
                stage = "prospecting"
            elif u < PROSPECTING_SHARE + ENGAGING_SHARE:
                stage = "engaging"
            elif buying and rng.random() < WIN_BASE + WIN_SKILL * rep.skill:
                stage = "won"
            else:
                stage = "lost"
            cust: _Cust | None
            engaged: date | None
            closed: date | None = None
            lost_reason = None
            if stage == "won":
                cust = buying[_pick(rng, buying_cum)]
                close_day = sampler.day(cust.start, cust.end)
                closed = cal.dates[close_day]
                engaged = closed - timedelta(days=rng.randint(5, 60))
                created = engaged - timedelta(days=rng.randint(2, 40))
            elif stage == "lost":
                early = rng.random() < LOST_BEFORE_ENGAGING_SHARE
                no_customer = not rep.customers or (early and rng.random() < NO_CUSTOMER_SHARE)
                cust = None if no_customer else rng.choice(rep.customers)
                close_day = sampler.day(cust.start, cust.end) if cust else sampler.day(0, last_day)
                closed = cal.dates[close_day]
                engaged = None if early else closed - timedelta(days=rng.randint(5, 60))
                created = (engaged or closed) - timedelta(days=rng.randint(2, 40))
                lost_reason = rng.choice(text.lost_reasons)
            else:
                no_customer = stage == "prospecting" and rng.random() < NO_CUSTOMER_SHARE
                cust = None if no_customer or not open_pool else rng.choice(open_pool)
                if stage == "prospecting":
                    created, engaged = cal.as_of - timedelta(days=rng.randint(1, 90)), None
                else:
                    created = cal.as_of - timedelta(days=rng.randint(10, 150))
                    engaged = min(created + timedelta(days=rng.randint(1, 30)), cal.as_of - timedelta(days=1))
            if cust is not None:
                # A deal is never older than its customer's record.
                created = max(created, cust.created_at.date())
                engaged = max(engaged, created) if engaged else None
            tier = cust.tier if cust else LEAD
            product, quantity, amount = _deal(rng, tier, rep.skill)
            if stage == "won" and cust is not None and closed is not None:
                won = _WonOrder(next_id, (closed - cal.start).days, amount, ctx.product_ids[product], quantity)
                ctx.won_orders.setdefault(cust.index, []).append(won)
            yield {
                "id": next_id,
                "customer_id": cust.id if cust else None,
                "owner_id": rep.id,
                "product_id": ctx.product_ids[product],
                "title": text.deal_title.format(product=PRODUCTS[product].name, quantity=quantity),
                "amount": amount,
                "stage": stage,
                "created_on": created,
                "engaged_on": engaged,
                "closed_on": closed,
                "lost_reason": lost_reason,
                "version": 1,
            }


def _orders(ctx: _Context) -> Iterator[dict[str, Any]]:
    rng = ctx.rng("orders")
    cal, reps, tally = ctx.cal, ctx.reps, ctx.tally
    sampler = _Sampler(cal, rng)
    buying = [c for c in ctx.customers if c.transacting and c.owner >= 0 and not c.deleted]
    # Every existing account bought before the window, so "first order" marks only real new customers.
    for cust in buying:
        cust.history_order = not cust.is_new
    guaranteed = sum(1 for c in buying if c.is_new and c.index not in ctx.won_orders)
    won_total = sum(len(v) for v in ctx.won_orders.values())
    history = sum(1 for c in buying if c.history_order)
    regular = ctx.spec.orders - won_total - history - guaranteed
    if regular < 0:
        raise SeedError(f"scale leaves no room for regular orders ({regular})")
    weights = list(
        accumulate(
            ORDER_TIER_WEIGHT[c.tier] * (ORDER_BASE + ORDER_SKILL * reps[c.owner].skill) * (c.end - c.start + 1)
            for c in buying
        )
    )
    extra = [0] * len(buying)
    for slot in rng.choices(range(len(buying)), cum_weights=weights, k=regular):
        extra[slot] += 1

    def row(
        cust: _Cust, ordered_on: date, amount: Decimal, product_id: int, quantity: int, opportunity_id: int | None
    ) -> dict[str, Any]:
        if ordered_on >= cal.start:
            tally.revenue[cust.owner][cal.month_of_day[(ordered_on - cal.start).days]] += float(amount)
        return {
            "customer_id": cust.id,
            "rep_id": reps[cust.owner].id,
            "ordered_on": ordered_on,
            "amount": amount,
            "product_id": product_id,
            "quantity": quantity,
            "opportunity_id": opportunity_id,
            "created_at": _at(ordered_on, rng.randint(9 * 60, 18 * 60)),
        }

    for slot, cust in enumerate(buying):
        rep = reps[cust.owner]
        days: list[int] = []
        if cust.history_order:
            earliest = max(cust.created_at.date(), cal.start - timedelta(days=HISTORY_ORDER_MAX_AGE_DAYS))
            span = (cal.start - timedelta(days=1) - earliest).days
            product, quantity, amount = _deal(rng, cust.tier, rep.skill)
            ordered_on = earliest + timedelta(days=rng.randint(0, max(span, 0)))
            yield row(cust, ordered_on, amount, ctx.product_ids[product], quantity, None)
        for won in ctx.won_orders.get(cust.index, ()):
            days.append(won.day)
            yield row(cust, cal.dates[won.day], won.amount, won.product_id, won.quantity, won.opportunity_id)
        count = extra[slot] + (1 if cust.is_new and cust.index not in ctx.won_orders else 0)
        for _ in range(count):
            day = sampler.day(cust.start, cust.end)
            days.append(day)
            product, quantity, amount = _deal(rng, cust.tier, rep.skill)
            yield row(cust, cal.dates[day], amount, ctx.product_ids[product], quantity, None)
        if days and not cust.history_order:
            tally.new_customers[rep.index][cal.month_of_day[min(days)]] += 1


def _interactions(ctx: _Context) -> Iterator[dict[str, Any]]:
    rng = ctx.rng("interactions")
    cal, text, reps = ctx.cal, ctx.text, ctx.reps
    sampler = _Sampler(cal, rng)
    rnd, randint, choice = rng.random, rng.randint, rng.choice
    last_day = cal.days - 1
    counts = _apportion(
        ctx.spec.interactions,
        [(0.6 + 0.8 * r.skill) * sum(INTERACTION_TIER_WEIGHT[c.tier] for c in r.customers) for r in reps],
    )
    visit = InteractionKind.VISIT
    for rep, count in zip(reps, counts, strict=True):
        if count == 0:
            continue
        cum = _weights_cum(rep.customers, INTERACTION_TIER_WEIGHT, cal.days)
        p_visit = VISIT_SHARE_BASE + VISIT_SHARE_SKILL * rep.skill
        p_positive = POSITIVE_BASE + POSITIVE_SKILL * rep.skill
        p_negative = NEGATIVE_BASE - NEGATIVE_SKILL * rep.skill
        rows: list[tuple[int, _Cust, dict[str, Any]]] = []
        visits = ctx.tally.visits[rep.index]
        for cust in rng.choices(rep.customers, cum_weights=cum, k=count):
            day = sampler.day(cust.start, cust.end)
            u = rnd()
            kind = visit if u < p_visit else OTHER_KINDS[_pick(rng, OTHER_KIND_CUM)]
            if kind is visit or kind is InteractionKind.MEETING:
                minute, duration = randint(8 * 60 + 30, 17 * 60), 5 * randint(4, 36)
            elif kind is InteractionKind.CALL:
                minute, duration = randint(8 * 60, 19 * 60), randint(2, 40)
            else:
                minute, duration = randint(7 * 60, 22 * 60), None
            occurred = _at(cal.dates[day], minute)
            if occurred <= cust.created_at:
                occurred = cust.created_at + timedelta(minutes=30)
            u = rnd()
            if cust.end < last_day and day > cust.end - CHURN_NEGATIVE_DAYS:
                outcome = Outcome.NEGATIVE if u < CHURN_NEGATIVE_SHARE else Outcome.NEUTRAL
            else:
                outcome = (
                    Outcome.POSITIVE if u < p_positive else Outcome.NEGATIVE if u > 1 - p_negative else Outcome.NEUTRAL
                )
            if kind is visit:
                visits[cal.month_of_day[day]] += 1
            rows.append(
                (
                    day,
                    cust,
                    {
                        "customer_id": cust.id,
                        "rep_id": rep.id,
                        "kind": kind.value,
                        "occurred_at": occurred,
                        "duration_minutes": duration,
                        "subject": choice(text.subjects[kind]),
                        "notes": choice(text.notes[outcome]) if rnd() < NOTES_SHARE else None,
                        "outcome": outcome.value,
                        "next_follow_up": None,
                        "location": f"{cust.city.city} {cust.address}" if kind is visit else None,
                        "created_at": occurred + timedelta(minutes=randint(1, 120)),
                    },
                )
            )
        rows.sort(key=lambda item: item[2]["occurred_at"])
        _plan_follow_ups(ctx, rng, rows)
        for _, _, row in rows:
            yield row


def _plan_follow_ups(ctx: _Context, rng: random.Random, rows: list[tuple[int, _Cust, dict[str, Any]]]) -> None:
    """Give each customer's latest recent contact an open follow-up: due today, overdue or ahead."""
    cal = ctx.cal
    as_of = cal.as_of
    last: dict[int, int] = {}
    for position, (_, cust, _) in enumerate(rows):
        last[cust.index] = position
    latest = sorted(last.values())
    due_today = overdue = 0
    for position in latest:
        day, cust, row = rows[position]
        if day < cal.days - FOLLOW_UP_RECENT_DAYS or cust.end < cal.days - 1:
            continue
        occurred: date = row["occurred_at"].date()
        u = rng.random()
        gap = (as_of - occurred).days  # >= 1
        if u < FOLLOW_UP_DUE_TODAY or (u < FOLLOW_UP_DUE_TODAY + FOLLOW_UP_OVERDUE and gap < 2):
            row["next_follow_up"] = as_of
            due_today += 1
        elif u < FOLLOW_UP_DUE_TODAY + FOLLOW_UP_OVERDUE:
            row["next_follow_up"] = occurred + timedelta(days=rng.randint(1, min(gap - 1, FOLLOW_UP_MAX_OVERDUE_DAYS)))
            overdue += 1
        elif u < FOLLOW_UP_DUE_TODAY + FOLLOW_UP_OVERDUE + FOLLOW_UP_FUTURE:
            row["next_follow_up"] = as_of + timedelta(days=rng.randint(1, FOLLOW_UP_MAX_AHEAD_DAYS))
    # Every rep's "my day" has something due today and something overdue.
    if not due_today and latest:
        rows[latest[-1]][2]["next_follow_up"] = as_of
    if not overdue:
        for position in reversed(latest[:-1]):
            row = rows[position][2]
            occurred = row["occurred_at"].date()
            if (as_of - occurred).days >= 2:
                row["next_follow_up"] = as_of - timedelta(days=1)
                break


def _complaints(ctx: _Context) -> list[dict[str, Any]]:
    rng = ctx.rng("complaints")
    cal, text, reps = ctx.cal, ctx.text, ctx.reps
    sampler = _Sampler(cal, rng)
    last_day = cal.days - 1
    total = ctx.spec.complaints
    overdue_open = max(1, round(total * OVERDUE_OPEN_SHARE))
    open_not_due = max(1, round(total * OPEN_NOT_DUE_SHARE))
    buying = [c for c in ctx.customers if c.transacting and c.owner >= 0 and not c.deleted]
    resolvable = [c for c in buying if c.start <= last_day - RESOLVED_OPEN_MIN_DAYS_BEFORE_AS_OF]
    # Weak reps' customers complain more; big accounts more than small ones.
    resolvable_cum = list(
        accumulate(ORDER_TIER_WEIGHT[c.tier] * (1.5 - reps[c.owner].skill) * (c.end - c.start + 1) for c in resolvable)
    )
    current = [c for c in resolvable if c.end == last_day and c.start <= last_day - 40]
    current_cum = list(accumulate((1.5 - reps[c.owner].skill) for c in current))
    severities, categories = list(SEVERITY_WEIGHTS), list(CATEGORY_WEIGHTS)
    severity_cum = list(accumulate(SEVERITY_WEIGHTS.values()))
    category_cum = list(accumulate(CATEGORY_WEIGHTS.values()))
    rows = []
    for number in range(total):
        state = "overdue" if number < overdue_open else "fresh" if number < overdue_open + open_not_due else "resolved"
        cust = current[_pick(rng, current_cum)] if state != "resolved" else resolvable[_pick(rng, resolvable_cum)]
        rep = reps[cust.owner]
        severity = severities[_pick(rng, severity_cum)]
        if state == "fresh" and severity is Severity.HIGH:
            severity = Severity.LOW  # a high one opened yesterday would already be due
        sla = timedelta(hours=SLA_HOURS[severity])
        if state == "overdue":
            day = last_day - sla.days - rng.randint(2, 20)
        elif state == "fresh":
            day = last_day
        else:
            day = sampler.day(cust.start, min(cust.end, last_day - RESOLVED_OPEN_MIN_DAYS_BEFORE_AS_OF))
        opened = _at(cal.dates[day], rng.randint(8 * 60, 20 * 60))
        due = opened + sla
        resolved = resolution = satisfied = None
        if state == "resolved":
            late = rng.random() < LATE_BASE - LATE_SKILL * rep.skill
            if late:
                resolved = due + timedelta(hours=rng.uniform(2, 1.5 * SLA_HOURS[severity]))
            else:
                resolved = opened + sla * rng.uniform(0.05, 0.95)
            resolved = min(resolved, cal.midnight - timedelta(minutes=rng.randint(10, 600))).replace(microsecond=0)
            late = resolved > due
            satisfied = rng.random() < (SATISFIED_LATE if late else SATISFIED_ON_TIME)
            resolution = rng.choice(text.resolutions)
            if late:
                cust.bad_day = day if cust.bad_day < 0 else min(cust.bad_day, day)
        elif state == "overdue":
            cust.bad_day = day if cust.bad_day < 0 else min(cust.bad_day, day)
        category = categories[_pick(rng, category_cum)]
        rows.append(
            {
                "customer_id": cust.id,
                "opened_at": opened,
                "category": category,
                "severity": severity.value,
                "description": rng.choice(text.complaints[category]),
                "assignee_id": rep.id,
                "due_at": due,
                "resolved_at": resolved,
                "resolution": resolution,
                "satisfied": satisfied,
                "version": 1,
                "created_at": opened,
            }
        )
    ctx.complaint_rows = rows
    return rows


def _survey_responses(ctx: _Context) -> Iterator[dict[str, Any]]:
    rng = ctx.rng("surveys")
    cal, text, reps = ctx.cal, ctx.text, ctx.reps
    sampler = _Sampler(cal, rng)
    last_day = cal.days - 1
    by_id = {c.id: c for c in ctx.customers}
    follow_ups = min(round(ctx.spec.survey_responses * COMPLAINT_SURVEY_SHARE), len(ctx.complaint_rows))
    chosen = sorted(rng.sample(range(len(ctx.complaint_rows)), follow_ups))
    eligible = [c for c in ctx.customers if c.tier >= PROSPECT and c.owner >= 0 and not c.deleted]
    cum = _weights_cum(eligible, SURVEY_TIER_WEIGHT, cal.days)
    picks: list[tuple[_Cust, int]] = []
    for position in chosen:
        complaint = ctx.complaint_rows[position]
        after: datetime = complaint["resolved_at"] or complaint["opened_at"]
        day = min((after.date() - cal.start).days + rng.randint(1, 10), last_day)
        picks.append((by_id[complaint["customer_id"]], day))
    for cust in rng.choices(eligible, cum_weights=cum, k=ctx.spec.survey_responses - follow_ups):
        picks.append((cust, sampler.day(cust.start, cust.end)))
    for cust, day in picks:
        rep = reps[cust.owner]
        mean = CSAT_BASE + CSAT_SKILL * rep.skill + (CSAT_TIER_BONUS if cust.tier >= KEY else 0.0)
        if 0 <= cust.bad_day <= day:
            mean -= CSAT_COMPLAINT_PENALTY  # an overdue complaint sours the customer
        overall = _clamp(rng.gauss(mean, CSAT_SPREAD), 1, 5)

        def dimension(bias: float, overall: int = overall) -> int | None:
            return _clamp(overall + bias + rng.gauss(0, 0.7), 1, 5) if rng.random() < DIMENSION_SHARE else None

        responded = cal.dates[day]
        sentiment = 0 if overall <= 2 else 1 if overall == 3 else 2
        yield {
            "customer_id": cust.id,
            "rep_id": rep.id,
            "responded_on": responded,
            "overall": overall,
            "quality": dimension(0.1),
            "service": dimension(0.4 * rep.skill - 0.2),
            "price": dimension(-0.3),
            "after_sales": dimension(-0.5 if cust.bad_day >= 0 else 0.0),
            "recommend": _clamp(2.2 * overall - 1.2 + rng.gauss(0, 1.0), 0, 10)
            if rng.random() < RECOMMEND_SHARE
            else None,
            "comment": rng.choice(text.survey_comments[sentiment]) if rng.random() < COMMENT_SHARE else None,
            "created_at": _at(responded, rng.randint(8 * 60, 21 * 60)),
        }


def _round_target(value: float) -> Decimal:
    step = 1000 if value >= 10_000 else 100 if value >= 1_000 else 10
    return Decimal(max(step, round(value / step) * step))


def _targets(ctx: _Context) -> Iterator[dict[str, Any]]:
    rng = ctx.rng("targets")
    cal, reps, tally = ctx.cal, ctx.reps, ctx.tally
    full = range(HISTORY_MONTHS)
    year_weight = sum(cal.month_weight[m] for m in full)

    def blended(series: list[list[Any]]) -> list[float]:
        """Return per rep a year's figure between the team's mean and the rep's own."""
        totals = [float(sum(row[m] for m in full)) for row in series]
        team_mean = sum(totals) / len(totals)
        return [TARGET_TEAM_WEIGHT * team_mean + (1 - TARGET_TEAM_WEIGHT) * own for own in totals]

    revenues, news, visit_counts = blended(tally.revenue), blended(tally.new_customers), blended(tally.visits)
    for rep in reps:
        revenue, new, visits = revenues[rep.index], news[rep.index], visit_counts[rep.index]
        for month, first in enumerate(cal.month_starts):
            share = cal.month_weight[month] / year_weight
            yield {
                "rep_id": rep.id,
                "month": first,
                "revenue_target": _round_target(revenue * share * rng.uniform(*TARGET_NOISE)),
                "new_customer_target": max(1, round(new * share * rng.uniform(*TARGET_NOISE))),
                "visit_target": max(1, round(visits * share * rng.uniform(*TARGET_NOISE))),
                "set_by_id": rep.manager_id,
                "updated_at": _at(first, 9 * 60),
            }


def _attitude_scores(ctx: _Context) -> Iterator[dict[str, Any]]:
    rng = ctx.rng("attitude")
    cal = ctx.cal
    items = ("initiative", "cooperation", "responsibility", "discipline")
    for rep in ctx.reps:
        traits = [rng.gauss(0, ATTITUDE_TRAIT_SPREAD) for _ in items]
        for month in range(ATTITUDE_MONTHS):
            start, end = cal.month_starts[month], cal.month_starts[month + 1]
            base = ATTITUDE_BASE + ATTITUDE_SKILL * rep.skill
            scored = min(end + timedelta(days=rng.randint(0, 4)), cal.as_of)
            row: dict[str, Any] = {
                "rep_id": rep.id,
                "period_start": start,
                "period_end": end,
                "scorer_id": rep.manager_id,
            }
            for item, trait in zip(items, traits, strict=True):
                row[item] = _clamp(base + trait + rng.gauss(0, ATTITUDE_MONTH_SPREAD), 0, 100)
            row["comment"] = rng.choice(ctx.text.attitude_comments) if rng.random() < ATTITUDE_COMMENT_SHARE else None
            row["updated_at"] = _at(scored, 10 * 60)
            yield row


# --- loading --------------------------------------------------------------------------------------


class _Loader:
    """Write rows in chunks: COPY on PostgreSQL, executemany of a Core insert elsewhere."""

    def __init__(self, conn: Connection, progress: ProgressFn | None) -> None:
        self.conn = conn
        self.copy = conn.dialect.name == "postgresql"
        self.progress = progress
        self.counts: dict[str, int] = {}

    def load(self, model: type[Base], rows: Iterable[dict[str, Any]], total: int) -> None:
        table: Table = model.__table__  # type: ignore[assignment]
        done = 0
        self._report(table.name, done, total)
        chunk: list[dict[str, Any]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= CHUNK_ROWS:
                done += self._flush(table, chunk)
                chunk = []
                self._report(table.name, done, total)
        if chunk:
            done += self._flush(table, chunk)
            self._report(table.name, done, total)
        self.counts[table.name] = self.counts.get(table.name, 0) + done

    def _report(self, name: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(name, done, max(total, done))

    def _flush(self, table: Table, chunk: list[dict[str, Any]]) -> int:
        if not self.copy:
            self.conn.execute(insert(table), chunk)
            return len(chunk)
        columns = list(chunk[0])
        quoted = ", ".join(f'"{name}"' for name in columns)
        driver = self.conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
            for row in chunk:
                copy.write_row([row[name] for name in columns])
        return len(chunk)


def _max_id(conn: Connection, model: type[Base]) -> int:
    table: Table = model.__table__  # type: ignore[assignment]
    return int(conn.scalar(select(func.max(table.c.id))) or 0)


def _check_empty(conn: Connection, usernames: Sequence[str]) -> None:
    customers = int(conn.scalar(select(func.count()).select_from(Customer)) or 0)
    if customers:
        raise SeedError(
            f"the database already has {customers} customers; seed only an empty database "
            "(point CRM_DATABASE_URL at a new database, or delete data/crm.db)"
        )
    taken = list(conn.scalars(select(User.username).where(User.username.in_(usernames)).order_by(User.username)))
    if taken:
        raise SeedError(f"users {', '.join(taken)} already exist; seed only an empty database")


def _secondary_indexes(conn: Connection) -> list[Index]:
    inspector = inspect(conn)
    found: list[Index] = []
    for model in BULK_MODELS:
        table: Table = model.__table__  # type: ignore[assignment]
        present = {ix["name"] for ix in inspector.get_indexes(table.name)}
        found.extend(ix for ix in sorted(table.indexes, key=lambda ix: str(ix.name)) if ix.name in present)
    return found


def _advance_sequences(conn: Connection) -> None:
    """Move PostgreSQL id sequences past the ids the seed chose itself."""
    for model in EXPLICIT_ID_MODELS:
        table: Table = model.__table__  # type: ignore[assignment]
        sequence = func.pg_get_serial_sequence(table.name, "id")
        conn.execute(select(func.setval(sequence, select(func.max(table.c.id)).scalar_subquery())))


def seed(
    engine: Engine,
    *,
    scale: ScaleName,
    locale: str = "en_US",
    seed: int = 42,
    password: str,
    as_of: date,
    progress: ProgressFn | None = None,
) -> SeedResult:
    """Fill an empty database with deterministic demo data; raise SeedError if it holds customers."""
    started = wall.perf_counter()
    if scale not in SCALES:
        raise SeedError(f"unknown scale '{scale}' (choose {', '.join(SCALES)})")
    if locale not in SUPPORTED_LOCALES:
        raise SeedError(f"unsupported locale '{locale}' (choose {', '.join(SUPPORTED_LOCALES)})")
    if not password or len(password.encode()) > BCRYPT_MAX_BYTES:
        raise SeedError(f"the demo password must be 1 to {BCRYPT_MAX_BYTES} bytes long")
    spec = SCALES[scale]
    usernames = usernames_for(scale)
    password_hash = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    ctx = _Context(spec=spec, locale=locale, seed=seed, as_of=as_of, password_hash=password_hash)
    pools = _make_pools(locale, seed, spec.name_pool)

    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        _check_empty(conn, usernames)
        loader = _Loader(conn, progress)
        existing_products = {name: pid for pid, name in conn.execute(select(Product.id, Product.name))}
        user_rows = _users(ctx, pools, _max_id(conn, User))
        loader.load(User, user_rows, len(user_rows))
        product_rows = _products(ctx, existing_products, _max_id(conn, Product))
        loader.load(Product, product_rows, len(product_rows))
        indexes = _secondary_indexes(conn)
        # Loading into index-free tables and indexing once afterwards is several times faster.
        for index in indexes:
            index.drop(conn)
        loader.load(Customer, _customers(ctx, pools, _max_id(conn, Customer)), spec.customers)
        loader.load(Contact, _contacts(ctx, pools), expected_counts(scale)["contacts"])
        loader.load(Opportunity, _opportunities(ctx, _max_id(conn, Opportunity)), spec.opportunities)
        loader.load(Order, _orders(ctx), spec.orders)
        loader.load(Interaction, _interactions(ctx), spec.interactions)
        complaints = _complaints(ctx)
        loader.load(Complaint, complaints, spec.complaints)
        loader.load(SurveyResponse, _survey_responses(ctx), spec.survey_responses)
        loader.load(Target, _targets(ctx), spec.reps * TARGET_MONTHS)
        loader.load(AttitudeScore, _attitude_scores(ctx), spec.reps * ATTITUDE_MONTHS)
        for done, index in enumerate(indexes):
            if progress is not None:
                progress("indexes", done, len(indexes))
            index.create(conn)
        if progress is not None:
            progress("indexes", len(indexes), len(indexes))
        if conn.dialect.name == "postgresql":
            _advance_sequences(conn)
        admin = Actor(
            id=ctx.admin_id, username="admin", display_name=ctx.text.admin_name, role=Role.ADMIN, team=None, region=None
        )
        session = Session(bind=conn)
        # The bulk load bypassed the ORM flush hooks: compute the summary tables once, set-based.
        if progress is not None:
            progress("summaries", 0, 1)
        summaries.rebuild(session)
        if progress is not None:
            progress("summaries", 1, 1)
        changes: dict[str, list[Any]] = {
            "scale": [None, scale],
            "locale": [None, locale],
            "seed": [None, seed],
            "as_of": [None, as_of.isoformat()],
        }
        changes.update({table: [0, count] for table, count in loader.counts.items()})
        audit.record(
            session, actor=admin, action="seed", entity="database", entity_id=None, changes=changes, at=ctx.cal.midnight
        )
        session.flush()
        session.close()
        loader.counts["audit_events"] = 1
    # Fresh statistics so the planner uses the new indexes on the first dashboard query; on
    # PostgreSQL also VACUUM, whose visibility map lets the covering indexes answer without the heap.
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return SeedResult(
        scale=scale,
        locale=locale,
        seed=seed,
        as_of=as_of,
        counts=dict(loader.counts),
        usernames=usernames,
        elapsed_seconds=wall.perf_counter() - started,
    )
