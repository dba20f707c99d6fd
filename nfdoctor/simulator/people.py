"""Vietnamese names and chat lines the simulated shops' customers use, and shop brands.

The tuples' order and length are part of the seeded data: changing one changes what every
seed produces.
"""

from __future__ import annotations

import random

__all__ = ["CHAT_NAMES", "CHAT_TEXTS", "SHOP_BRANDS", "buyer_name"]

#: names of the people who chat with a page or OA
CHAT_NAMES = (
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

CHAT_TEXTS = (
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

#: the brand half of a shop name after the first account (a given name or a place)
SHOP_BRANDS = (
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

# Family names weighted roughly as they occur in Vietnam (Nguyễn alone is about 38 %).
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


def buyer_name(rng: random.Random) -> str:
    """A marketplace buyer's full name: family, middle and given name."""
    gender = rng.choice("fm")
    family = rng.choices([name for name, _ in _FAMILY], [weight for _, weight in _FAMILY])[0]
    return f"{family} {rng.choice(_MIDDLE[gender])} {rng.choice(_GIVEN[gender])}"
