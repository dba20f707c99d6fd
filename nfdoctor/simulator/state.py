"""The simulator's world: credentials, tokens with real lifetimes, shops, orders, chats.

Everything is derived from one seed through one ``random.Random``, so the same seed always
gives the same ids, secrets, tokens and data; time comes from an injected clock so tests can
move it forward and watch tokens expire.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Literal

__all__ = [
    "LIFETIMES",
    "MAX_ACCOUNTS_PER_PLATFORM",
    "PLATFORMS",
    "ZALO_OA_PROFILES",
    "Account",
    "Clock",
    "Conversation",
    "Message",
    "Order",
    "SimulatorState",
    "Token",
    "TokenStatus",
]

Clock = Callable[[], datetime]
TokenKind = Literal["access", "refresh"]
TokenStatus = Literal["ok", "unknown", "expired", "revoked", "used", "wrong_owner"]
PLATFORMS = ("shopee", "lazada", "tiktok", "facebook", "zalo")

# Lifetimes from platforms.md §0: (access, refresh); None = never expires / no refresh token.
LIFETIMES: dict[str, tuple[timedelta | None, timedelta | None]] = {
    "shopee": (timedelta(hours=4), timedelta(days=30)),
    # Lazada "Test" app: access 7 d; refresh 30 d per LZ-AUTH (LZ-ISV says 14 d).
    "lazada": (timedelta(days=7), timedelta(days=30)),
    # TikTok: access 7 d; refresh = the authorization duration the seller granted (1 year here).
    "tiktok": (timedelta(days=7), timedelta(days=365)),
    # Facebook Page token made from a long-lived user token: no expiry, no refresh token.
    "facebook": (None, None),
    # Zalo OA: 25 h access (expires_in "90000"), 3-month single-use refresh.
    "zalo": (timedelta(hours=25), timedelta(days=90)),
}

# Refresh deadlines that rotation does NOT move (Lazada documents it; TikTok's is the grant).
_FIXED_REFRESH_DEADLINE = {"lazada", "tiktok"}

_VN_NAMES = (
    "Nguyễn Văn An",
    "Trần Thị Bình",
    "Lê Hoàng Cường",
    "Phạm Thu Dung",
    "Hoàng Minh Đức",
    "Vũ Thị Hà",
    "Đặng Quốc Huy",
    "Bùi Ngọc Lan",
    "Đỗ Thanh Long",
    "Hồ Thị Mai",
    "Ngô Đức Nam",
    "Dương Thị Oanh",
    "Lý Văn Phúc",
    "Trịnh Thị Quỳnh",
    "Phan Minh Sơn",
    "Võ Thị Thảo",
)
# Shop names of the accounts after the first: a category that fits the platform's sellers
# and a brand (a given name or a place), as small Vietnamese shops name themselves.
_SHOP_CATEGORIES: dict[str, tuple[str, ...]] = {
    "shopee": (
        "Thời Trang",
        "Giày Dép",
        "Túi Xách",
        "Phụ Kiện",
        "Áo Dài",
        "Đồ Bộ",
        "Thời Trang Nam",
        "Đồ Thể Thao",
    ),
    "lazada": (
        "Mỹ Phẩm",
        "Điện Máy",
        "Điện Thoại",
        "Mẹ Và Bé",
        "Nước Hoa",
        "Chăm Sóc Da",
        "Văn Phòng Phẩm",
        "Đồ Chơi",
    ),
    "tiktok": (
        "Gia Dụng",
        "Đồ Bếp",
        "Nội Thất",
        "Đồ Ăn Vặt",
        "Thực Phẩm Sạch",
        "Trang Sức",
        "Nhà Cửa",
        "Đặc Sản",
    ),
    "facebook": (
        "Bánh Ngọt",
        "Tiệm Hoa",
        "Cà Phê",
        "Trà Sữa",
        "Bánh Mì",
        "Tiệm Nail",
        "Quán Chay",
        "Hải Sản",
    ),
    "zalo": (
        "Nhà Thuốc",
        "Nha Khoa",
        "Phòng Khám",
        "Anh Ngữ",
        "Spa",
        "Thẩm Mỹ Viện",
        "Gara Ô Tô",
        "Nhà Sách",
    ),
}
_SHOP_BRANDS = (
    "Hà My",
    "Thảo Nguyên",
    "Minh Anh",
    "An Khang",
    "Phương Linh",
    "Bảo Châu",
    "Gia Huy",
    "Hoàng Long",
    "Ngọc Trâm",
    "Tâm An",
    "Phúc Lộc",
    "Kim Ngân",
    "Thanh Hương",
    "Quỳnh Như",
    "Đức Thịnh",
    "Hồng Nhung",
    "Vạn Phát",
    "Hải Yến",
    "Tuệ Minh",
    "Mai Lan",
    "Sài Gòn",
    "Hà Nội",
    "Đà Lạt",
    "Hội An",
    "Cần Thơ",
    "Phố Huế",
    "Phú Quốc",
    "Nha Trang",
)
# Zalo OA profile fields (getoa) by category: (cate_name, description).
ZALO_OA_PROFILES: dict[str, tuple[str, str]] = {
    "Nhà Thuốc": ("Y tế", "Nhà thuốc uy tín tại TP.HCM"),
    "Nha Khoa": ("Y tế", "Nha khoa thẩm mỹ, đặt lịch khám qua Zalo"),
    "Phòng Khám": ("Y tế", "Phòng khám đa khoa, tư vấn sức khỏe miễn phí"),
    "Anh Ngữ": ("Giáo dục", "Trung tâm tiếng Anh cho trẻ em và người đi làm"),
    "Spa": ("Làm đẹp", "Spa chăm sóc da và thư giãn"),
    "Thẩm Mỹ Viện": ("Làm đẹp", "Thẩm mỹ viện, tư vấn liệu trình miễn phí"),
    "Gara Ô Tô": ("Ô tô - Xe máy", "Sửa chữa, bảo dưỡng ô tô các hãng"),
    "Nhà Sách": ("Sách - Văn phòng phẩm", "Sách, truyện và văn phòng phẩm chính hãng"),
}
#: most accounts per platform the simulator makes (``nfdoctor simulator --shops``)
MAX_ACCOUNTS_PER_PLATFORM = 50

_VN_TEXTS = (
    "Shop ơi, đơn của mình bao giờ giao ạ?",
    "Cho mình hỏi còn size M không?",
    "Mình muốn đổi màu sản phẩm được không?",
    "Cảm ơn shop, hàng đẹp lắm!",
    "Phí ship về Hà Nội bao nhiêu vậy?",
    "Mã giảm giá không áp dụng được shop ơi",
    "Dạ shop đã nhận thông tin, sẽ giao trong 2-3 ngày ạ.",
    "Dạ còn hàng ạ, bạn đặt ngay nhé.",
    "Xin chào, mình cần tư vấn thêm về sản phẩm.",
)


@dataclass
class Token:
    """One issued token; refresh tokens remember whether they were already used."""

    value: str
    platform: str
    kind: TokenKind
    owner: str
    issued_at: datetime
    expires_at: datetime | None
    revoked: bool = False
    used: bool = False


@dataclass(frozen=True)
class Order:
    """One marketplace order, in platform-neutral form; each app renders its own shape."""

    order_id: str
    status: str
    create_time: datetime
    update_time: datetime
    amount: int
    currency: str = "VND"


@dataclass(frozen=True)
class Message:
    """One chat message; ``from_customer`` tells direction."""

    message_id: str
    sender_id: str
    recipient_id: str
    text: str
    time: datetime
    from_customer: bool


@dataclass
class Conversation:
    """One chat thread with one customer, messages oldest first."""

    conversation_id: str
    user_id: str
    user_name: str
    messages: list[Message] = field(default_factory=list)

    @property
    def updated_time(self) -> datetime:
        """Time of the newest message."""
        return self.messages[-1].time


@dataclass
class Account:
    """One shop / seller / page / OA with the data the simulator serves for it."""

    platform: str
    account_id: str
    name: str
    orders: list[Order] = field(default_factory=list)
    conversations: list[Conversation] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)


_STATUSES = {
    "shopee": ("UNPAID", "READY_TO_SHIP", "PROCESSED", "SHIPPED", "COMPLETED", "CANCELLED"),
    "lazada": ("unpaid", "pending", "ready_to_ship", "shipped", "delivered", "canceled"),
    "tiktok": ("UNPAID", "AWAITING_SHIPMENT", "AWAITING_COLLECTION", "IN_TRANSIT", "COMPLETED"),
}


class SimulatorState:
    """Credentials, tokens and data of every simulated platform, from one seed and a clock.

    ``accounts_per_platform`` shops / sellers / pages / OAs per platform (1-50), each with
    its own ids, tokens and data (TikTok its own cipher, Zalo its own OA secret). Account 0
    is the same whatever that number; account k depends only on the seed and k.

    Not thread-safe: change it from another thread only while the server is idle (readers
    of the token table take a snapshot, as a late request may still issue tokens).
    """

    def __init__(
        self,
        seed: int = 7,
        clock: Clock | None = None,
        *,
        accounts_per_platform: int = 1,
        orders_per_shop: int = 250,
        conversations_per_account: int = 40,
    ) -> None:
        if not 1 <= accounts_per_platform <= MAX_ACCOUNTS_PER_PLATFORM:
            raise ValueError(
                f"accounts_per_platform must be 1-{MAX_ACCOUNTS_PER_PLATFORM}, "
                f"got {accounts_per_platform}"
            )
        if orders_per_shop < 0 or conversations_per_account < 0:
            raise ValueError("orders_per_shop and conversations_per_account must be 0 or more")
        self.seed = seed
        self.accounts_per_platform = accounts_per_platform
        self.clock: Clock = clock or (lambda: datetime.now(timezone.utc))
        self.rng = random.Random(seed)
        self.tokens: dict[str, Token] = {}
        self.accounts: dict[str, list[Account]] = {p: [] for p in PLATFORMS}
        # Whether a used refresh token may be presented again. Shopee and Zalo document single
        # use; Lazada and TikTok do not say, so the strict answer is the default (a switch).
        self.refresh_reuse_allowed: dict[str, bool] = {p: False for p in PLATFORMS}
        # Facebook sends usage headers only above a threshold; these make it reachable.
        self.facebook_hourly_allowance = 200
        self.facebook_usage_threshold_pct = 5
        self.zalo_limit_per_minute = 4000
        self.require_appsecret_proof: dict[str, bool] = {"facebook": False, "zalo": False}
        self._calls: dict[str, list[datetime]] = {p: [] for p in PLATFORMS}
        self._counter = 0
        now = self.clock()
        rng = self.rng
        self.shopee_partner_id = 2_000_000 + rng.randrange(100_000)
        self.shopee_partner_key = "shpk" + self._hex(60)
        self.lazada_app_key = str(100_000 + rng.randrange(900_000))
        self.lazada_app_secret = self._alnum(32)
        self.tiktok_app_key = "6" + self._alnum(12).lower()
        self.tiktok_app_secret = self._hex(40)
        self.facebook_app_id = str(10**14 + rng.randrange(10**14))
        self.facebook_app_secret = self._hex(32)
        self.facebook_verify_token = "verify-" + self._alnum(16)
        self.facebook_version = "v21.0"
        self.zalo_app_id = str(10**18 + rng.randrange(10**18))
        self.zalo_secret_key = self._alnum(20)
        self.crm_api_key = "crm-" + self._alnum(24)

        # Account 0 of every platform comes first and from the main stream, exactly as when
        # there was only one account per platform; the others come from a stream of their
        # own, so adding accounts changes nothing about account 0 or the draws that follow.
        first_names = {
            "shopee": "Thời Trang Hà My",
            "lazada": "Mỹ Phẩm Thảo Nguyên",
            "tiktok": "Gia Dụng Minh Anh",
            "facebook": "Bánh Ngọt Sài Gòn",
            "zalo": "Nhà Thuốc An Khang",
        }
        for platform in PLATFORMS:
            self.accounts[platform].append(self._new_account(platform, first_names[platform]))
        for platform in ("shopee", "lazada", "tiktok"):
            for account in self.accounts[platform]:
                account.orders = self._orders(platform, now, orders_per_shop)
        for platform in ("facebook", "zalo"):
            for account in self.accounts[platform]:
                account.conversations = self._conversations(
                    platform, account, now, conversations_per_account
                )
        for platform in PLATFORMS:
            for account in self.accounts[platform]:
                self.issue_pair(platform, account.account_id)
        if accounts_per_platform > 1:
            main_rng = self.rng
            try:
                self._add_accounts(
                    now, accounts_per_platform, orders_per_shop, conversations_per_account
                )
            finally:
                self.rng = main_rng

    def _new_account(self, platform: str, name: str) -> Account:
        """One account of ``platform`` with fresh ids (and cipher / OA secret) from ``rng``."""
        rng = self.rng
        if platform == "shopee":
            return Account("shopee", str(10_000_000 + rng.randrange(90_000_000)), name)
        if platform == "lazada":
            return Account("lazada", str(100_000_000 + rng.randrange(900_000_000)), name)
        if platform == "tiktok":
            return Account(
                "tiktok",
                "749" + self._digits(16),
                name,
                extra={"cipher": "ROW_" + self._alnum(24), "code": "VNLC" + self._alnum(6)},
            )
        if platform == "facebook":
            return Account("facebook", "1000" + self._digits(11), name)
        category = next((c for c in ZALO_OA_PROFILES if name.startswith(c + " ")), "Nhà Thuốc")
        cate_name, description = ZALO_OA_PROFILES[category]
        return Account(
            "zalo",
            "43" + self._digits(17),
            name,
            extra={
                "oa_secret": self._alnum(20),
                "cate_name": cate_name,
                "description": description,
            },
        )

    def _add_accounts(
        self, now: datetime, total: int, orders_per_shop: int, conversations_per_account: int
    ) -> None:
        """Accounts 1 … total-1 of every platform, each with its own data and tokens.

        Each comes from a random stream of its own (seed, platform, index) and the names from
        one per platform, so account k is the same whatever ``total`` (``--shops 3`` is the
        first three of ``--shops 5``) and its ids do not depend on the amount of data.
        Leaves ``self.rng`` on the last stream: the caller restores the main one.
        """
        names: dict[str, list[str]] = {}
        for platform in PLATFORMS:
            taken = {a.name for a in self.accounts[platform]}
            combos = [
                f"{category} {brand}"
                for category in _SHOP_CATEGORIES[platform]
                for brand in _SHOP_BRANDS
                if f"{category} {brand}" not in taken
            ]
            random.Random(f"nfdoctor-simulator/{self.seed}/{platform}/names").shuffle(combos)
            names[platform] = combos
        for index in range(1, total):
            for platform in PLATFORMS:
                self.rng = random.Random(f"nfdoctor-simulator/{self.seed}/{platform}/{index}")
                existing = self.accounts[platform]
                account = self._new_account(platform, names[platform][index - 1])
                # Ids are random: draw again on the (unlikely) collision with an earlier one.
                while any(
                    a.account_id == account.account_id
                    or ("cipher" in a.extra and a.extra["cipher"] == account.extra.get("cipher"))
                    for a in existing
                ):
                    account = self._new_account(platform, account.name)
                if platform in _STATUSES:
                    account.orders = self._orders(platform, now, orders_per_shop)
                else:
                    account.conversations = self._conversations(
                        platform, account, now, conversations_per_account
                    )
                existing.append(account)
                self.issue_pair(platform, account.account_id)

    # ---- ids -------------------------------------------------------------------------------

    def _hex(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def _alnum(self, n: int) -> str:
        return "".join(self.rng.choice(string.ascii_letters + string.digits) for _ in range(n))

    def _digits(self, n: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(n))

    def new_request_id(self) -> str:
        """A unique request id (sequence-based so responses stay deterministic)."""
        self._counter += 1
        return f"{self.seed:04d}{self._counter:012d}"

    # ---- data ------------------------------------------------------------------------------

    def _order_id(self, platform: str, created: datetime) -> str:
        if platform == "shopee":
            return created.strftime("%y%m%d") + self._alnum(8).upper()
        if platform == "lazada":
            return "4" + self._digits(14)
        return "57" + self._digits(16)

    def _orders(self, platform: str, now: datetime, count: int) -> list[Order]:
        orders = []
        for _ in range(count):
            created = now - timedelta(seconds=self.rng.randrange(30 * 86400))
            updated = min(now, created + timedelta(seconds=self.rng.randrange(3 * 86400)))
            orders.append(
                Order(
                    order_id=self._order_id(platform, created),
                    status=self.rng.choice(_STATUSES[platform]),
                    create_time=created.replace(microsecond=0),
                    update_time=updated.replace(microsecond=0),
                    amount=self.rng.randrange(50, 5000) * 1000,
                )
            )
        orders.sort(key=lambda o: o.create_time)
        return orders

    def _conversations(
        self, platform: str, account: Account, now: datetime, count: int
    ) -> list[Conversation]:
        conversations = []
        for _ in range(count):
            user_id = self._digits(16) if platform == "facebook" else "5" + self._digits(17)
            conv = Conversation(
                conversation_id=("t_" + self._digits(15)) if platform == "facebook" else user_id,
                user_id=user_id,
                user_name=self.rng.choice(_VN_NAMES),
            )
            t = now - timedelta(seconds=self.rng.randrange(30 * 86400))
            for _ in range(self.rng.randrange(2, 9)):
                t = min(now, t + timedelta(seconds=self.rng.randrange(30, 7200)))
                from_customer = self.rng.random() < 0.6
                mid = ("m_" + self._alnum(30)) if platform == "facebook" else self._hex(20)
                conv.messages.append(
                    Message(
                        message_id=mid,
                        sender_id=user_id if from_customer else account.account_id,
                        recipient_id=account.account_id if from_customer else user_id,
                        text=self.rng.choice(_VN_TEXTS),
                        time=t.replace(microsecond=t.microsecond // 1000 * 1000),
                        from_customer=from_customer,
                    )
                )
            conversations.append(conv)
        conversations.sort(key=lambda c: c.updated_time, reverse=True)
        return conversations

    def account(self, platform: str, account_id: str | None = None) -> Account | None:
        """The account with that id (or the first one when ``account_id`` is None)."""
        for account in self.accounts[platform]:
            if account_id is None or account.account_id == account_id:
                return account
        return None

    # ---- tokens ----------------------------------------------------------------------------

    def _token_value(self, platform: str, kind: TokenKind) -> str:
        if platform == "shopee":
            return self._hex(32)
        if platform == "lazada":
            return "50000" + self._alnum(40)
        if platform == "tiktok":
            return "TTP_" + self._alnum(36)
        if platform == "facebook":
            return "EAA" + self._alnum(120)
        return self._alnum(80 if kind == "access" else 100)

    def issue_pair(
        self,
        platform: str,
        owner: str,
        *,
        refresh_deadline: datetime | None = None,
        now: datetime | None = None,
    ) -> tuple[Token, Token | None]:
        """Issue a new access token (and refresh token where the platform has one), stamped
        with ``now``: the request's time, skewed when the fault plan skews this server's clock."""
        now = now or self.clock()
        access_life, refresh_life = LIFETIMES[platform]
        access = Token(
            value=self._token_value(platform, "access"),
            platform=platform,
            kind="access",
            owner=owner,
            issued_at=now,
            expires_at=now + access_life if access_life is not None else None,
        )
        self.tokens[access.value] = access
        if refresh_life is None:
            return access, None
        refresh = Token(
            value=self._token_value(platform, "refresh"),
            platform=platform,
            kind="refresh",
            owner=owner,
            issued_at=now,
            expires_at=refresh_deadline or now + refresh_life,
        )
        self.tokens[refresh.value] = refresh
        return access, refresh

    def current(self, platform: str, owner: str, kind: TokenKind) -> Token | None:
        """The newest live token of that kind for that owner."""
        best: Token | None = None
        for token in list(self.tokens.values()):  # the server thread may insert
            if (token.platform, token.owner, token.kind) != (platform, owner, kind):
                continue
            if token.revoked or token.used:
                continue
            if best is None or token.issued_at >= best.issued_at:
                best = token
        return best

    def check(
        self,
        platform: str,
        value: str | None,
        kind: TokenKind = "access",
        *,
        now: datetime | None = None,
        owner: str | None = None,
    ) -> tuple[TokenStatus, Token | None]:
        """Judge a presented token: issued here, of this kind, live, and (optionally) whose."""
        token = self.tokens.get(value or "")
        if token is None or token.platform != platform or token.kind != kind:
            return "unknown", None
        if token.revoked:
            return "revoked", token
        if token.used and not self.refresh_reuse_allowed[platform]:
            return "used", token
        moment = now or self.clock()
        if token.expires_at is not None and moment >= token.expires_at:
            return "expired", token
        if owner is not None and token.owner != owner:
            return "wrong_owner", token
        return "ok", token

    def rotate(
        self, old_refresh: Token, *, now: datetime | None = None
    ) -> tuple[Token, Token | None]:
        """Use a refresh token: mark it used and issue a new pair stamped with ``now``."""
        # The previous access token stays valid until it expires (no platform documents
        # otherwise); only the refresh token is consumed.
        old_refresh.used = True
        deadline = (
            old_refresh.expires_at if old_refresh.platform in _FIXED_REFRESH_DEADLINE else None
        )
        return self.issue_pair(
            old_refresh.platform, old_refresh.owner, refresh_deadline=deadline, now=now
        )

    def _current_or_fail(self, platform: str, account_id: str, kind: TokenKind) -> Token:
        if self.account(platform, account_id) is None:
            known = ", ".join(a.account_id for a in self.accounts.get(platform, []))
            raise KeyError(f"no {platform} account {account_id!r} (known: {known})")
        token = self.current(platform, account_id, kind)
        if token is None:
            raise ValueError(f"{platform} account {account_id} has no live {kind} token")
        return token

    def age_token(self, platform: str, account_id: str, *, expires_in: timedelta) -> Token:
        """Make the account's current access token expire ``expires_in`` from now.

        For demos ("token expires in 2 h") and tests; a negative span expires it already.
        Works on Facebook too (its Page token then stops being a never-expiring one).
        """
        token = self._current_or_fail(platform, account_id, "access")
        token.expires_at = self.clock() + expires_in
        return token

    def expire_refresh(
        self, platform: str, account_id: str, *, expires_in: timedelta = timedelta(0)
    ) -> Token:
        """Make the account's current refresh token expire ``expires_in`` from now (default:
        now, so the next refresh fails). Facebook has no refresh token: ``ValueError``."""
        token = self._current_or_fail(platform, account_id, "refresh")
        token.expires_at = self.clock() + expires_in
        return token

    def revoke_all(self, platform: str, owner: str | None = None) -> None:
        """Revoke every token of a platform (or of one owner): a password change, an unlink."""
        for token in list(self.tokens.values()):  # the server thread may insert
            if token.platform == platform and (owner is None or token.owner == owner):
                token.revoked = True

    def secret_values(self) -> list[str]:
        """Every secret this simulator issued or holds: app credentials, OA secrets, tokens
        (what its ``--debug`` access log must mask)."""
        values = [
            self.shopee_partner_key,
            self.lazada_app_secret,
            self.tiktok_app_secret,
            self.facebook_app_secret,
            self.facebook_verify_token,
            self.zalo_secret_key,
            self.crm_api_key,
            # Facebook's app token, ID|SECRET, is sent whole (debug_token)
            f"{self.facebook_app_id}|{self.facebook_app_secret}",
        ]
        values += [a.extra["oa_secret"] for a in self.accounts["zalo"] if "oa_secret" in a.extra]
        values += list(self.tokens)  # the server thread may insert: list() takes a snapshot
        return values

    # ---- usage -----------------------------------------------------------------------------

    def record_call(self, bucket: str, now: datetime, window: timedelta) -> int:
        """Count a call and return how many happened within ``window`` before ``now``.

        ``bucket`` is a platform (one counter per app) or e.g. ``"zalo:<oa_id>"`` (per account).
        """
        calls = [t for t in self._calls.get(bucket, []) if now - t < window]
        calls.append(now)
        self._calls[bucket] = calls
        return len(calls)
