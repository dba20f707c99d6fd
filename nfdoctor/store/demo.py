"""A seeded demo CRM database: real-looking Vietnamese shop data with planted duplicates.

The duplicates are planted the way ``crm-schema.md`` says the CRM produces them: a webhook
retry the CRM failed to acknowledge in time becomes a second (or third) ``messages`` row with
the same ``(shop_id, external_id)`` and a later ``received_at``; replies and attachments
point at the first copy; a retry that came after the thread was closed landed in a second
conversation for the same customer. One ``external_id`` is reused on another shop, which is
not a duplicate. The same seed and ``now`` always give the same content.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import secrets
import sqlite3
import string
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from nfdoctor.errors import UsageError
from nfdoctor.store.schema import create_schema_postgres, create_schema_sqlite

__all__ = [
    "DemoSummary",
    "build_demo_database",
    "create_schema_postgres",
    "create_schema_sqlite",
]

_SECOND = 1_000_000  # times are integer microseconds since the epoch until written out
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_VN = timezone(timedelta(hours=7))

CUSTOMERS = 300
CONVERSATIONS = 400
ORDERS = 600
DUPLICATE_GROUPS = 40
CLOSED_THREAD_GROUPS = 4


@dataclass(frozen=True, kw_only=True)
class DemoSummary:
    """What :func:`build_demo_database` wrote."""

    path: Path
    seed: int
    shops: int
    customers: int
    identities: int
    conversations: int
    messages: int
    attachments: int
    orders: int
    #: ``(shop_id, external_id)`` values held by more than one ``messages`` row
    duplicate_groups: int
    #: surplus copies: the rows a dedupe keeping one row per group would remove
    duplicate_rows: int
    #: groups whose late retry opened a second conversation for the same customer
    closed_thread_groups: int
    #: external ids reused on another shop: same id, different shop, not duplicates
    cross_shop_reuses: int


def build_demo_database(
    path: Path, *, seed: int = 7, now: datetime, overwrite: bool = False
) -> DemoSummary:
    """Write a new demo SQLite database at ``path`` (atomically) and say what is in it."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if path.is_dir():
        raise UsageError(f"{path} is a directory; name a file for the demo database")
    if path.exists() and not overwrite:
        raise UsageError(f"{path} already exists; refusing to overwrite it")
    if not path.parent.is_dir():
        raise UsageError(f"cannot create {path}: directory {path.parent} does not exist")
    data = _DemoData.generate(seed=seed, now_us=_to_us(now))
    # Built under a temporary name next to the target and renamed at the end, so a crash or
    # Ctrl-C never leaves a half-built file where the demo is expected.
    tmp = _create_temp_beside(path)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("BEGIN")
            create_schema_sqlite(conn)
            data.insert_into(conn)
            conn.execute("COMMIT")
        finally:
            conn.close()
        _move_into_place(tmp, path, overwrite=overwrite)
    finally:
        for leftover in (tmp, Path(f"{tmp}-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return data.summary(path, seed)


def _create_temp_beside(path: Path) -> Path:
    # Not tempfile.mkstemp(): its 0600 would survive the rename, and the demo is no secret;
    # mode 0666 lets the umask decide, as for any file the user creates.
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise UsageError(f"cannot create {path}: {exc.strerror or exc}") from None
        os.close(fd)
        return tmp


def _move_into_place(tmp: Path, path: Path, *, overwrite: bool) -> None:
    if overwrite:
        # A -wal or -journal left by the old file would be replayed into the new one.
        for suffix in ("-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{path}{suffix}").unlink()
        os.replace(tmp, path)
        return
    try:
        # link() fails if the target appeared meanwhile: no check-then-rename race.
        os.link(tmp, path)
    except FileExistsError:
        raise UsageError(f"{path} already exists; refusing to overwrite it") from None
    except OSError:
        # Some filesystems (FAT, some network mounts) have no hard links.
        if path.exists():
            raise UsageError(f"{path} already exists; refusing to overwrite it") from None
        os.replace(tmp, path)


# --- the data ----------------------------------------------------------------------------

_SHOPS: tuple[tuple[str, str], ...] = (
    ("Thời Trang Hà My", "shopee"),
    ("Gia Dụng An Phát", "shopee"),
    ("Mỹ Phẩm Thảo Nguyên", "shopee"),
    ("Giày Dép Minh Anh", "lazada"),
    ("Điện Máy Hoàng Long", "lazada"),
    ("Phụ Kiện Công Nghệ Techzone", "tiktok"),
    ("Thời Trang Hà My", "tiktok"),
    ("Mẹ và Bé Bảo Ngọc", "facebook"),
    ("Thời Trang Hà My", "facebook"),
    ("Nông Sản Sạch Đà Lạt", "zalo"),
)
_CHANNEL_LABEL = {
    "shopee": "Shopee",
    "lazada": "Lazada",
    "tiktok": "TikTok Shop",
    "facebook": "Facebook",
    "zalo": "Zalo OA",
}
# Chat happens more on Messenger and Zalo than in marketplace chat.
_CHAT_WEIGHTS = (10, 7, 7, 5, 4, 6, 5, 9, 9, 6)
_ORDER_WEIGHTS = {"shopee": 10, "lazada": 6, "tiktok": 7}

_CATALOG: dict[str, tuple[tuple[str, int], ...]] = {
    "Thời Trang Hà My": (
        ("Áo thun cotton nữ form rộng", 129_000),
        ("Váy hoa nhí vintage dáng dài", 289_000),
        ("Quần jean ống rộng lưng cao", 259_000),
        ("Áo sơ mi lụa công sở", 219_000),
        ("Chân váy xếp ly", 179_000),
    ),
    "Gia Dụng An Phát": (
        ("Nồi chiên không dầu 5L", 1_290_000),
        ("Bình giữ nhiệt inox 500ml", 149_000),
        ("Bộ 3 chảo chống dính", 459_000),
        ("Hộp đựng thực phẩm thủy tinh (set 5)", 239_000),
    ),
    "Mỹ Phẩm Thảo Nguyên": (
        ("Kem chống nắng SPF50+ 50ml", 245_000),
        ("Son kem lì màu đỏ gạch", 159_000),
        ("Sữa rửa mặt tạo bọt 150ml", 119_000),
        ("Nước tẩy trang 400ml", 169_000),
    ),
    "Giày Dép Minh Anh": (
        ("Giày sneaker nữ đế độn", 349_000),
        ("Dép quai ngang unisex", 89_000),
        ("Sandal nam quai hậu", 199_000),
    ),
    "Điện Máy Hoàng Long": (
        ("Quạt đứng 5 cánh", 590_000),
        ("Máy xay sinh tố 1.5L", 450_000),
        ("Ấm siêu tốc 1.8L", 235_000),
    ),
    "Phụ Kiện Công Nghệ Techzone": (
        ("Tai nghe bluetooth không dây", 299_000),
        ("Cáp sạc nhanh Type-C 1m", 59_000),
        ("Ốp lưng iPhone 15 trong suốt", 79_000),
        ("Sạc dự phòng 10000mAh", 329_000),
    ),
}
_SHIPPING_FEES = (0, 0, 15_000, 22_000, 30_000)

_FAMILY = (
    ("Nguyễn", 38),
    ("Trần", 11),
    ("Lê", 9),
    ("Phạm", 7),
    ("Hoàng", 5),
    ("Huỳnh", 4),
    ("Phan", 4),
    ("Vũ", 4),
    ("Võ", 3),
    ("Đặng", 2),
    ("Bùi", 2),
    ("Đỗ", 2),
    ("Hồ", 2),
    ("Ngô", 2),
    ("Dương", 1),
    ("Lý", 1),
)
_MIDDLE = {
    "f": ("Thị", "Thị", "Ngọc", "Thu", "Thanh", "Minh", "Hoài", "Bảo", "Kim", "Phương"),
    "m": ("Văn", "Văn", "Đức", "Minh", "Quang", "Hữu", "Thành", "Công", "Tuấn", "Gia"),
}
_GIVEN = {
    "f": (
        "Anh", "Hà", "Hương", "Lan", "Linh", "Mai", "Ngọc", "Nhung", "Phương", "Thảo",
        "Trang", "Vy", "Yến", "Hạnh", "Hằng", "Huyền", "Nga", "Nhi", "Quỳnh", "Uyên",
    ),
    "m": (
        "An", "Bình", "Cường", "Dũng", "Duy", "Hải", "Hiếu", "Hùng", "Huy", "Khang",
        "Khoa", "Long", "Nam", "Phúc", "Quân", "Sơn", "Tài", "Thắng", "Trung", "Việt",
    ),
}  # fmt: skip
_MOBILE_PREFIXES = "01346789"  # +84 90, 91, 93, 94, 96, 97, 98, 99

_INCOMING = (
    "Shop ơi, đơn của em giao chưa ạ?",
    "Shop ơi cho em hỏi đơn {order} bao giờ giao ạ?",
    "Sản phẩm này còn hàng không shop?",
    "Còn size M không ạ?",
    "Mình muốn đổi sang màu đen được không shop?",
    "Shop tư vấn giúp em, em cao 1m58 nặng 48kg mặc size nào ạ?",
    "Có freeship không shop?",
    "Em đặt nhầm địa chỉ, shop sửa giúp em với ạ",
    "Sao đơn {order} của mình bị hủy vậy shop?",
    "Hàng bị lỗi, em muốn đổi trả ạ",
    "Bao lâu thì nhận được hàng vậy shop?",
    "Shop có giao hỏa tốc không ạ?",
    "Cho mình xin số tài khoản để chuyển khoản nhé",
    "Em chuyển khoản rồi nhé shop, shop kiểm tra giúp em",
    "Ok shop, cảm ơn shop nhiều ạ",
    "Dạ vâng ạ",
    "Mua 2 cái có giảm giá không shop?",
    "Đơn {order} em muốn hủy được không ạ?",
    "Shipper gọi mà em không nghe máy kịp, shop báo giao lại giúp em nhé",
    "Hàng đẹp lắm, lần sau em ủng hộ tiếp ạ 😍",
    "Alo shop ơi",
    "Shop ơi, em nhận được hàng rồi nhưng thiếu 1 món ạ",
)
_OUTGOING = (
    "Dạ shop chào {ho} {given} ạ, {ho} cần shop hỗ trợ gì ạ?",
    "Dạ đơn {order} đã được giao cho đơn vị vận chuyển, dự kiến 2-3 ngày {ho} nhận được ạ.",
    "Dạ sản phẩm vẫn còn hàng ạ.",
    "Dạ với chiều cao cân nặng đó {ho} mặc size S là vừa ạ.",
    "Dạ shop đang freeship cho đơn từ 150k ạ.",
    "Dạ {ho} gửi shop địa chỉ mới, shop cập nhật ngay ạ.",
    "Shop xin lỗi {ho} vì sự bất tiện này, {ho} gửi shop ảnh sản phẩm giúp shop nhé.",
    "Dạ shop đã nhận được thanh toán, cảm ơn {ho} ạ.",
    "Dạ {ho} chờ shop kiểm tra một chút nhé.",
    "Cảm ơn {ho} đã ủng hộ shop ạ ❤️",
    "Dạ mua từ 2 sản phẩm shop giảm 10% ạ.",
    "Dạ shop đã báo bên vận chuyển giao lại cho {ho} ạ.",
)

# platform status → normalised status, as each platform spells it (platforms.md)
_PLATFORM_STATUSES: dict[str, dict[str, tuple[str, ...]]] = {
    "shopee": {
        "pending": ("UNPAID",),
        "paid": ("READY_TO_SHIP", "PROCESSED"),
        "shipped": ("SHIPPED",),
        "delivered": ("COMPLETED", "TO_CONFIRM_RECEIVE"),
        "cancelled": ("CANCELLED",),
        "returned": ("TO_RETURN",),
    },
    "lazada": {
        "pending": ("unpaid",),
        "paid": ("pending", "topack", "ready_to_ship"),
        "shipped": ("shipped",),
        "delivered": ("delivered",),
        "cancelled": ("canceled",),
        "returned": ("returned",),
    },
    "tiktok": {
        "pending": ("UNPAID",),
        "paid": ("AWAITING_SHIPMENT", "AWAITING_COLLECTION"),
        "shipped": ("IN_TRANSIT",),
        "delivered": ("DELIVERED", "COMPLETED"),
        "cancelled": ("CANCELLED",),
        # TikTok handles returns outside the order status, so no order ends "returned".
    },
}
# When a status is reached, counted from the order's creation (min, max).
_STATUS_DELAY = {
    "pending": (0, 10 * _MINUTE),
    "paid": (1 * _MINUTE, 2 * _HOUR),
    "shipped": (12 * _HOUR, 48 * _HOUR),
    "delivered": (2 * _DAY, 5 * _DAY),
    "cancelled": (10 * _MINUTE, 2 * _DAY),
    "returned": (5 * _DAY, 12 * _DAY),
}
# Gaps between webhook redeliveries of one message (platforms.md, "Retries").
_RETRY_GAPS: dict[str, tuple[int, int]] = {
    "shopee": (3 * _SECOND, 40 * _SECOND),
    "lazada": (30 * _MINUTE, 30 * _MINUTE + 20 * _SECOND),
    "tiktok": (2 * _MINUTE, 30 * _MINUTE),
    "facebook": (1 * _SECOND, 20 * _SECOND),
    "zalo": (30 * _SECOND, 5 * _MINUTE),
}


@dataclass
class _Shop:
    id: int
    channel: str
    external_id: str
    name: str
    brand: str
    created_us: int


@dataclass
class _Customer:
    seq: int
    family: str
    middle: str
    given: str
    gender: str
    display_name: str | None
    phone: str | None
    email: str | None
    created_us: int
    merged_into: _Customer | None = None
    id: int = 0


@dataclass
class _Identity:
    seq: int
    customer: _Customer
    channel: str
    external_user_id: str
    display_name: str
    first_seen_us: int
    id: int = 0


@dataclass
class _Conversation:
    seq: int
    shop: _Shop
    customer: _Customer
    identity: _Identity
    external_thread_id: str | None
    created_us: int
    status: str = "open"
    last_us: int | None = None
    messages: list[_Message] = field(default_factory=list)
    id: int = 0


@dataclass
class _Message:
    seq: int
    conversation: _Conversation
    external_id: str
    direction: str
    sender: str
    body: str | None
    sent_us: int
    received_us: int
    reply_to: _Message | None = None
    copy_of: _Message | None = None
    id: int = 0


@dataclass
class _Attachment:
    seq: int
    message: _Message
    kind: str
    url: str


@dataclass
class _Order:
    seq: int
    shop: _Shop
    external_id: str
    customer: _Customer | None
    platform_status: str
    status: str
    total_amount: int
    created_us: int
    updated_us: int
    synced_us: int
    raw: dict[str, Any]
    id: int = 0


class _DemoData:
    """Generates every row in memory from one seeded RNG, then writes them in one go."""

    def __init__(self, seed: int, now_us: int) -> None:
        self.rng = random.Random(seed)
        self.now_us = now_us
        self.seq = 0
        self.used_ids: set[str] = set()  # membership only: set order is not deterministic
        self.shops: list[_Shop] = []
        self.customers: list[_Customer] = []
        self.identities: dict[tuple[int, str], _Identity] = {}
        self.conversations: list[_Conversation] = []
        self.messages: list[_Message] = []
        self.attachments: list[_Attachment] = []
        self.orders: list[_Order] = []
        self.orders_by_key: dict[tuple[int, int], list[_Order]] = {}
        self.duplicate_groups = 0
        self.duplicate_rows = 0
        self.closed_thread_groups = 0
        self.cross_shop_reuses = 0

    @classmethod
    def generate(cls, *, seed: int, now_us: int) -> _DemoData:
        data = cls(seed, now_us)
        data._make_shops()
        data._make_customers()
        data._make_orders()
        data._make_conversations()
        data._plant_duplicates()
        data._reuse_id_on_other_shop()
        data._merge_some_customers()
        data._assign_ids()
        return data

    # -- helpers ------------------------------------------------------------------------

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def _between(self, low: int, high: int) -> int:
        return self.rng.randint(low, max(low, high))

    def _digits(self, length: int, first: str = "123456789") -> str:
        return self.rng.choice(first) + "".join(self.rng.choices(string.digits, k=length - 1))

    def _unique(self, make: Callable[[], str]) -> str:
        while True:
            value = make()
            if value not in self.used_ids:
                self.used_ids.add(value)
                return value

    # -- shops, customers, identities ---------------------------------------------------

    def _make_shops(self) -> None:
        ages = sorted((self._between(120 * _DAY, 540 * _DAY) for _ in _SHOPS), reverse=True)
        for index, ((brand, channel), age) in enumerate(zip(_SHOPS, ages, strict=True), start=1):
            self.shops.append(
                _Shop(
                    id=index,
                    channel=channel,
                    external_id=self._unique(functools.partial(self._shop_external_id, channel)),
                    name=f"{brand} - {_CHANNEL_LABEL[channel]}",
                    brand=brand,
                    created_us=self.now_us - age,
                )
            )

    def _shop_external_id(self, channel: str) -> str:
        if channel == "shopee":  # shop_id, 9 digits (e.g. 727720655)
            return self._digits(9)
        if channel == "lazada":  # seller_id
            return "200" + self._digits(9, string.digits)
        if channel == "tiktok":  # shop id, 19 digits (e.g. 7494049642642441621)
            return "7494" + self._digits(15, string.digits)
        if channel == "facebook":  # page id, 15-16 digits
            return "10" + self._digits(self.rng.choice((13, 14)), string.digits)
        return self._digits(self.rng.choice((18, 19)))  # Zalo OA id, 18-19 digits

    def _make_customers(self) -> None:
        families = [name for name, _ in _FAMILY]
        weights = [weight for _, weight in _FAMILY]
        for _ in range(CUSTOMERS):
            gender = self.rng.choice("fm")
            family = self.rng.choices(families, weights)[0]
            middle = self.rng.choice(_MIDDLE[gender])
            given = self.rng.choice(_GIVEN[gender])
            full = f"{family} {middle} {given}"
            phone = None
            if self.rng.random() < 0.85:
                phone = "+849" + self.rng.choice(_MOBILE_PREFIXES) + self._digits(7, string.digits)
            email = None
            if self.rng.random() < 0.3:
                local = _ascii(f"{given}{family}").lower().replace(" ", "")
                email = f"{local}{self.rng.randint(1, 999)}@gmail.com"
            self.customers.append(
                _Customer(
                    seq=self._next(),
                    family=family,
                    middle=middle,
                    given=given,
                    gender=gender,
                    display_name=full if self.rng.random() < 0.97 else None,
                    phone=phone,
                    email=email,
                    created_us=self.now_us - self._between(1 * _HOUR, 400 * _DAY),
                )
            )

    def _identity(self, customer: _Customer, shop: _Shop, at_us: int) -> _Identity:
        # Marketplace buyer ids are per platform; Messenger PSIDs and Zalo user ids are
        # scoped to one page / OA, so a person has one per page they write to.
        page_scoped = shop.channel in ("facebook", "zalo")
        key = (customer.seq, f"{shop.channel}:{shop.id}" if page_scoped else shop.channel)
        identity = self.identities.get(key)
        if identity is not None:
            identity.first_seen_us = min(identity.first_seen_us, at_us)
            return identity
        full = f"{customer.family} {customer.middle} {customer.given}"
        shown = self.rng.choices(
            (full, f"{customer.middle} {customer.given}", _ascii(full)), (6, 2, 2)
        )[0]
        identity = _Identity(
            seq=self._next(),
            customer=customer,
            channel=shop.channel,
            external_user_id=self._unique(lambda: self._user_external_id(shop.channel)),
            display_name=shown,
            first_seen_us=at_us,
        )
        self.identities[key] = identity
        return identity

    def _user_external_id(self, channel: str) -> str:
        if channel == "shopee":  # buyer_user_id
            return self._digits(self.rng.choice((8, 9, 10)))
        if channel == "lazada":  # buyer_id
            return self._digits(self.rng.choice((9, 10, 11)))
        if channel == "tiktok":  # buyer user id, 19 digits
            return "7" + self._digits(18, string.digits)
        if channel == "facebook":  # page-scoped id (PSID)
            return self._digits(self.rng.choice((16, 17)))
        return self._digits(self.rng.choice((18, 19)))  # Zalo user id (follower of the OA)

    def _customer_before(self, latest_us: int) -> _Customer:
        # Only people the CRM knew before the activity.
        while True:
            customer = self.rng.choice(self.customers)
            if customer.created_us < latest_us - _MINUTE:
                return customer

    # -- orders -------------------------------------------------------------------------

    def _make_orders(self) -> None:
        marketplace = [shop for shop in self.shops if shop.channel in _ORDER_WEIGHTS]
        weights = [_ORDER_WEIGHTS[shop.channel] for shop in marketplace]
        for _ in range(ORDERS):
            shop = self.rng.choices(marketplace, weights)[0]
            latest = self.now_us - 10 * _MINUTE
            customer = self._customer_before(latest)
            earliest = max(self.now_us - 60 * _DAY, customer.created_us + _MINUTE)
            created = self._between(earliest, latest)
            identity = self._identity(customer, shop, created)
            status = self._order_status(shop.channel, self.now_us - created)
            low, high = _STATUS_DELAY[status]
            updated = created + self._between(low, high)
            updated = max(created, min(updated, self.now_us - self._between(_MINUTE, 10 * _MINUTE)))
            synced = min(updated + self._between(5 * _SECOND, 15 * _MINUTE), self.now_us)
            platform_status = self.rng.choice(_PLATFORM_STATUSES[shop.channel][status])
            items = [
                (*self.rng.choice(_CATALOG[shop.brand]), self.rng.choice((1, 1, 1, 2)))
                for _ in range(self.rng.choice((1, 1, 2, 3)))
            ]
            fee = self.rng.choice(_SHIPPING_FEES)
            total = sum(price * qty for _, price, qty in items) + fee
            external_id = self._unique(functools.partial(self._order_id, shop.channel, created))
            # A few orders the CRM could not match to a customer (guest or unlinked buyer).
            linked = customer if self.rng.random() < 0.96 else None
            order = _Order(
                seq=self._next(),
                shop=shop,
                external_id=external_id,
                customer=linked,
                platform_status=platform_status,
                status=status,
                total_amount=total,
                created_us=created,
                updated_us=updated,
                synced_us=synced,
                raw=_order_payload(
                    shop.channel,
                    external_id=external_id,
                    platform_status=platform_status,
                    buyer=identity,
                    items=items,
                    fee=fee,
                    total=total,
                    created_us=created,
                    updated_us=updated,
                    payment=self.rng.choice(("COD", "COD", "WALLET", "BANK_TRANSFER")),
                ),
            )
            self.orders.append(order)
            if linked is not None:
                self.orders_by_key.setdefault((linked.seq, shop.id), []).append(order)

    def _order_status(self, channel: str, age_us: int) -> str:
        choices: tuple[str, ...]
        weights: tuple[int, ...]
        roll = self.rng.random()
        if age_us > 30 * _MINUTE and roll < 0.06:
            return "cancelled"
        if age_us < _HOUR:
            choices, weights = ("pending", "paid"), (6, 4)
        elif age_us < _DAY:
            choices, weights = ("pending", "paid", "shipped"), (1, 6, 3)
        elif age_us < 3 * _DAY:
            choices, weights = ("paid", "shipped", "delivered"), (1, 5, 4)
        elif age_us < 7 * _DAY or "returned" not in _PLATFORM_STATUSES[channel]:
            choices, weights = ("shipped", "delivered"), (1, 12)
        else:
            choices, weights = ("delivered", "returned"), (93, 7)
        return self.rng.choices(choices, weights)[0]

    def _order_id(self, channel: str, created_us: int) -> str:
        if channel == "shopee":  # order_sn: local date + 8 characters (e.g. 201218V2Y6E59M)
            day = _from_us(created_us).astimezone(_VN).strftime("%y%m%d")
            return day + "".join(self.rng.choices(string.digits + string.ascii_uppercase, k=8))
        if channel == "lazada":  # order_id, 15 digits (e.g. 260422900198363)
            return self._digits(15)
        return "57" + self._digits(16, string.digits)  # TikTok order id, 18 digits

    # -- conversations and messages -----------------------------------------------------

    def _make_conversations(self) -> None:
        for _ in range(CONVERSATIONS):
            shop = self.rng.choices(self.shops, _CHAT_WEIGHTS)[0]
            latest = self.now_us - 30 * _MINUTE
            customer = self._customer_before(latest)
            start = self._between(
                max(self.now_us - 30 * _DAY, customer.created_us + _MINUTE), latest
            )
            conversation = _Conversation(
                seq=self._next(),
                shop=shop,
                customer=customer,
                identity=self._identity(customer, shop, start),
                external_thread_id=self._thread_id(shop.channel),
                created_us=start,
            )
            self.conversations.append(conversation)
            self._fill_thread(conversation, start)
            self._set_status(conversation)

    def _thread_id(self, channel: str) -> str | None:
        if channel == "zalo":
            return None  # Zalo OA has no thread id: a conversation is the follower itself
        if channel == "facebook":
            return "t_" + self._unique(lambda: self._digits(self.rng.choice((15, 16))))
        if channel == "lazada":
            return self._unique(lambda: "10" + self._digits(14, string.digits))
        return self._unique(lambda: self._digits(self.rng.choice((18, 19))))

    def _fill_thread(self, conversation: _Conversation, start: int) -> None:
        shop = conversation.shop
        customer = conversation.customer
        orders = self.orders_by_key.get((customer.seq, shop.id), [])
        honorific = "chị" if customer.gender == "f" else "anh"
        sent = start
        direction = "in"
        last_in: _Message | None = None
        for index in range(self.rng.randint(3, 12)):
            if index:
                turn = self.rng.random() < 0.6
                new_direction = ("out" if direction == "in" else "in") if turn else direction
                if not turn:
                    sent += self._between(3 * _SECOND, 90 * _SECOND)
                elif new_direction == "out" and self.rng.random() < 0.15:
                    sent += self._between(1 * _HOUR, 10 * _HOUR)  # answered next shift
                elif new_direction == "out":
                    sent += self._between(20 * _SECOND, 25 * _MINUTE)
                else:
                    sent += self._between(10 * _SECOND, 2 * _HOUR)
                direction = new_direction
            sent += self.rng.randint(0, _SECOND - 1)  # microseconds, as the CRM stores them
            if sent > self.now_us - 3 * _SECOND:
                break
            templates = _INCOMING if direction == "in" else _OUTGOING
            body = self.rng.choice(templates)
            if "{order}" in body:
                if orders:
                    body = body.replace("{order}", self.rng.choice(orders).external_id)
                else:
                    body = self.rng.choice([t for t in templates if "{order}" not in t])
            body = body.format(ho=honorific, given=customer.given)
            message = _Message(
                seq=self._next(),
                conversation=conversation,
                external_id=self._unique(lambda: self._message_external_id(shop.channel)),
                direction=direction,
                sender=(
                    conversation.identity.external_user_id
                    if direction == "in"
                    else shop.external_id
                ),
                body=body,
                sent_us=sent,
                received_us=sent + self._between(150_000, 2_500_000),  # webhook latency
            )
            if direction == "out" and last_in is not None and self.rng.random() < 0.15:
                message.reply_to = last_in
            if direction == "in":
                last_in = message
            attach_chance = 0.07 if direction == "in" else 0.04
            if self.rng.random() < attach_chance:
                self._attach(message, self.rng.choices(("image", "video", "file"), (8, 1, 1))[0])
                if direction == "in" and self.rng.random() < 0.5:
                    message.body = None  # a photo sent on its own has no text
            conversation.messages.append(message)
            self.messages.append(message)
        conversation.last_us = conversation.messages[-1].sent_us if conversation.messages else None

    def _set_status(self, conversation: _Conversation) -> None:
        choices: tuple[str, ...]
        weights: tuple[int, ...]
        idle = self.now_us - (conversation.last_us or conversation.created_us)
        if idle > 2 * _DAY:
            choices, weights = ("closed", "pending"), (92, 8)
        elif idle > 6 * _HOUR:
            choices, weights = ("closed", "pending", "open"), (2, 1, 1)
        else:
            choices, weights = ("open", "pending"), (7, 3)
        conversation.status = self.rng.choices(choices, weights)[0]

    def _message_external_id(self, channel: str) -> str:
        if channel == "facebook":  # message.mid
            alphabet = string.ascii_letters + string.digits + "-_"
            return "m_" + "".join(self.rng.choices(alphabet, k=86))
        if channel == "lazada":  # opaque string (e.g. 1zYOS7N0cuIqw96026)
            alphabet = string.ascii_letters + string.digits
            return self.rng.choice("123456789") + "".join(self.rng.choices(alphabet, k=17))
        if channel == "zalo":  # message.msg_id (e.g. 96d3cdf3af150460909)
            return "".join(self.rng.choices("0123456789abcdef", k=19))
        return self._digits(19)  # Shopee message_id / TikTok message id, ~19 digits

    def _attach(self, message: _Message, kind: str) -> None:
        channel = message.conversation.shop.channel
        token = "".join(self.rng.choices("0123456789abcdef", k=32))
        extension = {"image": "jpg", "video": "mp4", "file": "pdf"}[kind]
        if channel == "shopee":
            url = f"https://cf.shopee.vn/file/vn-11134103-{token}"
        elif channel == "lazada":
            url = f"https://vn-live-01.slatic.net/p/{token}.{extension}"
        elif channel == "tiktok":
            url = f"https://p16-oec-va.ibyteimg.com/tos-maliva-i-o3syd03w52-us/{token}~tplv-origin.{extension}"
        elif channel == "facebook":
            a, b, c = (self._digits(n) for n in (9, 15, 19))
            url = f"https://scontent.xx.fbcdn.net/v/t1.15752-9/{a}_{b}_{c}_n.{extension}"
        else:
            url = f"https://f20-zpc.zdn.vn/{extension}/{self._digits(19)}/{token}.{extension}"
        self.attachments.append(_Attachment(seq=self._next(), message=message, kind=kind, url=url))

    # -- planted faults -----------------------------------------------------------------

    def _plant_duplicates(self) -> None:
        settled = self.now_us - 6 * _HOUR  # room for every retry to land before now
        closed = [
            conv
            for conv in self.conversations
            if conv.status == "closed"
            and conv.last_us is not None
            and conv.last_us < settled
            and any(m.direction == "in" for m in conv.messages)
        ]
        late = [
            [m for m in conv.messages if m.direction == "in"][-1]
            for conv in self.rng.sample(closed, CLOSED_THREAD_GROUPS)
        ]
        chosen_seqs = {m.seq for m in late}
        pool = [m for m in self.messages if m.received_us < settled and m.seq not in chosen_seqs]
        incoming = [m for m in pool if m.direction == "in"]
        outgoing = [m for m in pool if m.direction == "out"]
        prompt: list[_Message] = []
        while len(prompt) < DUPLICATE_GROUPS - CLOSED_THREAD_GROUPS:
            # Mostly customer messages; echoes of the shop's own replies are redelivered too.
            candidate = self.rng.choice(outgoing if self.rng.random() < 0.15 else incoming)
            if candidate.seq not in chosen_seqs:
                chosen_seqs.add(candidate.seq)
                prompt.append(candidate)
        # Before any copy exists, make sure some originals carry what a careless dedupe would
        # orphan: an attachment, a reply pointing at them. Copies inherit reply_to as sent.
        for index, original in enumerate(late + prompt):
            if index % 3 == 0 and not any(a.message is original for a in self.attachments):
                self._attach(original, "image")
            if index % 3 == 1 and original.direction == "in":
                later = [
                    m
                    for m in original.conversation.messages
                    if m.direction == "out" and m.sent_us > original.sent_us
                ]
                if later:
                    later[0].reply_to = original
        for original in late:
            self._retry_after_close(original)
        for original in prompt:
            self._retry(original, copies=self.rng.choices((1, 2), (7, 3))[0])

    def _retry(self, original: _Message, *, copies: int) -> None:
        low, high = _RETRY_GAPS[original.conversation.shop.channel]
        received = original.received_us
        for _ in range(copies):
            received += self._between(low, high)
            self._copy(original, original.conversation, received)
        self.duplicate_groups += 1

    def _retry_after_close(self, original: _Message) -> None:
        first = original.conversation
        assert first.last_us is not None
        received = max(first.last_us, original.received_us) + self._between(20 * _MINUTE, 3 * _HOUR)
        # The thread was closed, so the CRM opened a second one for the same customer.
        second = _Conversation(
            seq=self._next(),
            shop=first.shop,
            customer=first.customer,
            identity=first.identity,
            external_thread_id=first.external_thread_id,
            created_us=received,
            status=self.rng.choice(("open", "pending")),
            last_us=original.sent_us,
        )
        self.conversations.append(second)
        copies = self.rng.choices((1, 2), (7, 3))[0]
        for _ in range(copies):
            self._copy(original, second, received)
            received += self._between(*_RETRY_GAPS[first.shop.channel])
        self.duplicate_groups += 1
        self.closed_thread_groups += 1

    def _copy(self, original: _Message, conversation: _Conversation, received_us: int) -> None:
        copy = _Message(
            seq=self._next(),
            conversation=conversation,
            external_id=original.external_id,
            direction=original.direction,
            sender=original.sender,
            body=original.body,
            sent_us=original.sent_us,
            received_us=received_us,
            reply_to=original.reply_to,
            copy_of=original,
        )
        conversation.messages.append(copy)
        self.messages.append(copy)
        self.duplicate_rows += 1

    def _reuse_id_on_other_shop(self) -> None:
        # Two Shopee shops, one message id: different (shop_id, external_id), not a duplicate.
        duplicated = {m.external_id for m in self.messages if m.copy_of is not None}

        def singles(shop: _Shop) -> list[_Message]:
            return [
                m
                for m in self.messages
                if m.conversation.shop is shop and m.external_id not in duplicated
            ]

        first = self.rng.choice(singles(self.shops[0]))
        second = self.rng.choice(singles(self.shops[1]))
        second.external_id = first.external_id
        self.cross_shop_reuses += 1

    def _merge_some_customers(self) -> None:
        active = {identity.customer.seq for identity in self.identities.values()}
        idle = [c for c in self.customers if c.seq not in active]
        for customer in self.rng.sample(idle, min(8, len(idle))):
            older = [c for c in self.customers if c.created_us < customer.created_us]
            if older:
                target = self.rng.choice(older)
                customer.merged_into = target
                customer.phone = target.phone  # merged because the phone matched

    def _assign_ids(self) -> None:
        # Ids in insertion order, as the CRM would have inserted them: by time.
        for number, customer in enumerate(
            sorted(self.customers, key=lambda c: (c.created_us, c.seq)), start=1
        ):
            customer.id = number
        for number, identity in enumerate(
            sorted(self.identities.values(), key=lambda i: (i.first_seen_us, i.seq)), start=1
        ):
            identity.id = number
        self.conversations.sort(key=lambda c: (c.created_us, c.seq))
        for number, conversation in enumerate(self.conversations, start=1):
            conversation.id = number
        self.messages.sort(key=lambda m: (m.received_us, m.seq))
        for number, message in enumerate(self.messages, start=1):
            message.id = number
        self.orders.sort(key=lambda o: (o.created_us, o.seq))
        for number, order in enumerate(self.orders, start=1):
            order.id = number
        self.attachments.sort(key=lambda a: (a.message.id, a.seq))

    # -- output -------------------------------------------------------------------------

    def insert_into(self, conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO shops (id, channel, external_id, name, created_at) VALUES (?,?,?,?,?)",
            [(s.id, s.channel, s.external_id, s.name, _ts(s.created_us)) for s in self.shops],
        )
        conn.executemany(
            "INSERT INTO customers (id, display_name, phone, email, created_at, merged_into_id)"
            " VALUES (?,?,?,?,?,?)",
            [
                (
                    c.id,
                    c.display_name,
                    c.phone,
                    c.email,
                    _ts(c.created_us),
                    c.merged_into.id if c.merged_into else None,
                )
                for c in sorted(self.customers, key=lambda c: c.id)
            ],
        )
        conn.executemany(
            "INSERT INTO customer_identities"
            " (id, customer_id, channel, external_user_id, display_name) VALUES (?,?,?,?,?)",
            [
                (i.id, i.customer.id, i.channel, i.external_user_id, i.display_name)
                for i in sorted(self.identities.values(), key=lambda i: i.id)
            ],
        )
        conn.executemany(
            "INSERT INTO conversations (id, shop_id, customer_id, external_thread_id, status,"
            " created_at, last_message_at) VALUES (?,?,?,?,?,?,?)",
            [
                (
                    c.id,
                    c.shop.id,
                    c.customer.id,
                    c.external_thread_id,
                    c.status,
                    _ts(c.created_us),
                    _ts(c.last_us) if c.last_us is not None else None,
                )
                for c in self.conversations
            ],
        )
        conn.executemany(
            "INSERT INTO messages (id, conversation_id, shop_id, external_id, direction,"
            " sender_external_id, body, sent_at, received_at, reply_to_id)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    m.id,
                    m.conversation.id,
                    m.conversation.shop.id,
                    m.external_id,
                    m.direction,
                    m.sender,
                    m.body,
                    _ts(m.sent_us),
                    _ts(m.received_us),
                    m.reply_to.id if m.reply_to else None,
                )
                for m in self.messages
            ],
        )
        conn.executemany(
            "INSERT INTO message_attachments (id, message_id, kind, url) VALUES (?,?,?,?)",
            [
                (number, a.message.id, a.kind, a.url)
                for number, a in enumerate(self.attachments, start=1)
            ],
        )
        conn.executemany(
            "INSERT INTO orders (id, shop_id, external_id, customer_id, platform_status, status,"
            " total_amount, currency, created_at, updated_at, synced_at, raw)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    o.id,
                    o.shop.id,
                    o.external_id,
                    o.customer.id if o.customer else None,
                    o.platform_status,
                    o.status,
                    o.total_amount,
                    "VND",
                    _ts(o.created_us),
                    _ts(o.updated_us),
                    _ts(o.synced_us),
                    json.dumps(o.raw, ensure_ascii=False, separators=(",", ":")),
                )
                for o in self.orders
            ],
        )

    def summary(self, path: Path, seed: int) -> DemoSummary:
        return DemoSummary(
            path=path,
            seed=seed,
            shops=len(self.shops),
            customers=len(self.customers),
            identities=len(self.identities),
            conversations=len(self.conversations),
            messages=len(self.messages),
            attachments=len(self.attachments),
            orders=len(self.orders),
            duplicate_groups=self.duplicate_groups,
            duplicate_rows=self.duplicate_rows,
            closed_thread_groups=self.closed_thread_groups,
            cross_shop_reuses=self.cross_shop_reuses,
        )


def _order_payload(
    channel: str,
    *,
    external_id: str,
    platform_status: str,
    buyer: _Identity,
    items: Sequence[tuple[str, int, int]],
    fee: int,
    total: int,
    created_us: int,
    updated_us: int,
    payment: str,
) -> dict[str, Any]:
    """The order as the platform's API returns it (the shape ``raw`` keeps)."""
    created_s, updated_s = created_us // _SECOND, updated_us // _SECOND
    if channel == "shopee":
        return {
            "order_sn": external_id,
            "order_status": platform_status,
            "region": "VN",
            "currency": "VND",
            "cod": payment == "COD",
            "total_amount": total,
            "estimated_shipping_fee": fee,
            "buyer_user_id": int(buyer.external_user_id),
            "create_time": created_s,
            "update_time": updated_s,
            "payment_method": {"COD": "Cash on Delivery", "WALLET": "ShopeePay"}.get(
                payment, "Bank Transfer"
            ),
            "item_list": [
                {
                    "item_name": name,
                    "model_quantity_purchased": qty,
                    "model_discounted_price": price,
                }
                for name, price, qty in items
            ],
        }
    if channel == "lazada":
        customer = buyer.customer
        return {
            "order_id": int(external_id),
            "order_number": int(external_id),
            "statuses": [platform_status],
            "price": f"{total - fee}.00",
            "shipping_fee": f"{fee}.00",
            "payment_method": {"WALLET": "LAZADA_WALLET"}.get(payment, payment),
            "items_count": str(sum(qty for _, _, qty in items)),
            "customer_first_name": customer.given,
            "customer_last_name": customer.family,
            "created_at": _from_us(created_us).astimezone(_VN).isoformat(timespec="seconds"),
            "updated_at": _from_us(updated_us).astimezone(_VN).isoformat(timespec="seconds"),
        }
    return {
        "id": external_id,
        "status": platform_status,
        "user_id": buyer.external_user_id,
        "create_time": created_s,
        "update_time": updated_s,
        "payment_method_name": {"COD": "Cash on delivery"}.get(payment, payment.title()),
        "payment": {
            "currency": "VND",
            "sub_total": str(total - fee),
            "shipping_fee": str(fee),
            "total_amount": str(total),
        },
        "line_items": [
            {"product_name": name, "sale_price": str(price), "currency": "VND"}
            for name, price, qty in items
            for _ in range(qty)  # TikTok lists one line item per unit
        ],
    }


def _ascii(text: str) -> str:
    """Vietnamese without diacritics, as many people type their names on Messenger."""
    decomposed = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _ts(value: int) -> str:
    """The CRM's SQLite time format: UTC, microseconds, ``Z``."""
    return _from_us(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
