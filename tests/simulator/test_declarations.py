"""Each simulated platform is declared once, in its own module, and the seeded data is what
it was before the declarations existed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from nfdoctor.simulator.app import PREFIXES
from nfdoctor.simulator.registry import NAMES, SIM_PLATFORMS, sim_platform
from nfdoctor.simulator.state import LIFETIMES, PLATFORMS, SimulatorState
from nfdoctor.store.schema import ORDER_STATUSES, channels

SIMULATOR = Path(__file__).resolve().parents[2] / "nfdoctor" / "simulator"
NOW = datetime(2026, 11, 26, 3, 0, tzinfo=timezone.utc)


def test_platform_names_appear_only_in_their_own_module() -> None:
    modules = sorted(SIMULATOR.glob("*.py"))
    assert {p.stem for p in modules} >= set(NAMES)
    for module in modules:
        text = module.read_text(encoding="utf-8")
        for name in NAMES:
            if module.stem != name:
                assert f'"{name}"' not in text and f"'{name}'" not in text, (module.name, name)


def test_the_simulator_imports_none_of_the_clients_checks_or_cli() -> None:
    # A fresh interpreter: this test process has imported everything already.
    code = (
        "import sys\n"
        "import nfdoctor.simulator.app, nfdoctor.simulator.server, nfdoctor.simulator.crm_data\n"
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in (['nfdoctor', 'platforms'],"
        " ['nfdoctor', 'checks'], ['nfdoctor', 'cli'], ['nfdoctor', 'services'])))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_the_registry_is_the_crms_channels_and_everything_derives_from_it() -> None:
    assert NAMES == PLATFORMS == channels()
    assert [sim_platform(name) for name in NAMES] == list(SIM_PLATFORMS)
    with pytest.raises(KeyError, match="no simulated platform 'sendo'"):
        sim_platform("sendo")
    prefixes = [host.prefix for spec in SIM_PLATFORMS for host in spec.hosts]
    assert len(prefixes) == len(set(prefixes))
    assert {
        **{host.prefix: spec.name for spec in SIM_PLATFORMS for host in spec.hosts},
        "/crm": "crm",
    } == PREFIXES
    assert {s.name: (s.access_lifetime, s.refresh_lifetime) for s in SIM_PLATFORMS} == LIFETIMES


@pytest.mark.parametrize("spec", SIM_PLATFORMS, ids=NAMES)
def test_each_declaration_is_complete(spec: Any) -> None:
    assert (spec.orders is None) != (spec.chat is None)  # a marketplace or a chat platform
    if spec.orders is not None:
        # Every status the simulator serves has one CRM status, and only the CRM's six.
        assert set(spec.orders.statuses) <= set(spec.orders.crm_status)
        assert set(spec.orders.crm_status.values()) <= set(ORDER_STATUSES)
    if spec.chat is not None:
        low, high = spec.chat.webhook_retry_gap
        assert 0 < low.total_seconds() <= high.total_seconds()
    assert spec.first_account_name and len(spec.shop_categories) >= 8
    assert dataclasses.is_dataclass(spec.settings_type) and spec.setting_names()


def test_settings_keep_their_old_flat_names() -> None:
    state = SimulatorState(7, lambda: NOW, orders_per_shop=0, conversations_per_account=0)
    for spec in SIM_PLATFORMS:
        settings = spec.settings(state)
        for name in spec.setting_names():
            assert getattr(state, f"{spec.name}_{name}") == getattr(settings, name)
    state.zalo_limit_per_minute = 1  # type: ignore[attr-defined]
    state.facebook_hourly_allowance = 3  # type: ignore[attr-defined]
    assert sim_platform("zalo").settings(state).limit_per_minute == 1
    assert sim_platform("facebook").settings(state).hourly_allowance == 3
    assert "zalo_limit_per_minute" not in vars(state)  # set on the settings, not beside them
    with pytest.raises(AttributeError, match="shopee_partner_secret"):
        _ = state.shopee_partner_secret  # type: ignore[attr-defined]
    state.note = "free attributes still work"  # type: ignore[attr-defined]
    assert state.note == "free attributes still work"  # type: ignore[attr-defined]


# ---- the seeded data is what it was -------------------------------------------------------

_CREDENTIALS = (
    "shopee_partner_id",
    "shopee_partner_key",
    "lazada_app_key",
    "lazada_app_secret",
    "tiktok_app_key",
    "tiktok_app_secret",
    "facebook_app_id",
    "facebook_app_secret",
    "facebook_verify_token",
    "facebook_version",
    "zalo_app_id",
    "zalo_secret_key",
    "crm_api_key",
)


def _fingerprint(state: SimulatorState) -> str:
    """Every id, secret, token and datum the simulator had before its platforms were declared
    in their modules (buyers, which came after, left out)."""

    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    def order(o: Any) -> list[Any]:
        return [
            o.order_id,
            o.status,
            when(o.create_time),
            when(o.update_time),
            o.amount,
            o.currency,
        ]

    def message(m: Any) -> list[Any]:
        return [m.message_id, m.sender_id, m.recipient_id, m.text, when(m.time), m.from_customer]

    def conversation(c: Any) -> list[Any]:
        return [c.conversation_id, c.user_id, c.user_name, [message(m) for m in c.messages]]

    data: dict[str, Any] = {"cred": {k: getattr(state, k) for k in _CREDENTIALS}}
    data["accounts"] = {
        platform: [
            {
                "id": a.account_id,
                "name": a.name,
                "platform": a.platform,
                "extra": a.extra,
                "orders": [order(o) for o in a.orders],
                "convs": [conversation(c) for c in a.conversations],
            }
            for a in accounts
        ]
        for platform, accounts in state.accounts.items()
    }
    data["tokens"] = [
        [t.value, t.platform, t.kind, t.owner, when(t.issued_at), when(t.expires_at)]
        for t in state.tokens.values()
    ]
    data["secrets"] = sorted(state.secret_values())
    data["misc"] = [
        state.refresh_reuse_allowed,
        state.require_appsecret_proof,
        state.zalo_limit_per_minute,  # type: ignore[attr-defined]
        state.facebook_hourly_allowance,  # type: ignore[attr-defined]
        state.facebook_usage_threshold_pct,  # type: ignore[attr-defined]
        state.new_request_id(),
    ]
    text = json.dumps(data, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("seed", "accounts", "orders", "conversations", "pinned"),
    [
        # Computed with the simulator as it was before this refactoring (commit 92ac6da).
        (7, 1, 250, 40, "e65e9e0918aba2de372f26452af0685b96d7b81bcf022e23cef36c3e69a2f885"),
        (7, 3, 5, 3, "ba342737842e076ac2fca96b81a9a0a859d371108c03f3f19527597187d67bca"),
        (21, 3, 5, 3, "6f77b09701c88b792d28eb5b7851a7ee0a4a13b123e6c0a9285716f4f80e1291"),
        (42, 5, 0, 0, "6fc966f9f41db58057010e07d9eed08c11a5de1ca413d9f6d5b87bbabf129e49"),
    ],
)
def test_the_same_seed_gives_the_same_data_as_before(
    seed: int, accounts: int, orders: int, conversations: int, pinned: str
) -> None:
    state = SimulatorState(
        seed,
        lambda: NOW,
        accounts_per_platform=accounts,
        orders_per_shop=orders,
        conversations_per_account=conversations,
    )
    assert _fingerprint(state) == pinned


def test_buyers_are_drawn_apart_from_the_data() -> None:
    small = SimulatorState(7, lambda: NOW, accounts_per_platform=2, orders_per_shop=40)
    again = SimulatorState(7, lambda: NOW, accounts_per_platform=2, orders_per_shop=40)
    more = SimulatorState(7, lambda: NOW, accounts_per_platform=3, orders_per_shop=40)
    for spec in SIM_PLATFORMS:
        if spec.orders is None:
            continue
        orders = [o for a in small.accounts[spec.name] for o in a.orders]
        buyers = [o.buyer_user_id for o in orders]
        assert all(re.fullmatch(r"[1-9]\d{7,18}", b) for b in buyers), spec.name
        assert len(set(buyers)) < len(buyers)  # some buyers order again
        assert all(len(o.buyer_name.split()) == 3 for o in orders)
        assert [o.buyer_user_id for a in again.accounts[spec.name] for o in a.orders] == buyers
        # ... whatever the number of shops: shop k's buyers depend on the seed and k only
        assert [o.buyer_user_id for a in more.accounts[spec.name][:2] for o in a.orders] == buyers


def test_shared_message_ids_change_one_id_of_the_second_page_only() -> None:
    def messages(state: SimulatorState) -> list[list[list[Any]]]:
        return [
            [[dataclasses.astuple(m) for c in a.conversations for m in c.messages]]
            for spec in SIM_PLATFORMS
            for a in state.accounts[spec.name]
        ]

    plain = SimulatorState(5, lambda: NOW, accounts_per_platform=2, conversations_per_account=6)
    shared = SimulatorState(
        5, lambda: NOW, accounts_per_platform=2, conversations_per_account=6, shared_message_ids=1
    )
    changed = [
        (index, before, after)
        for index, (old, new) in enumerate(zip(messages(plain), messages(shared), strict=True))
        for before, after in zip(old[0], new[0], strict=True)
        if before != after
    ]
    assert len(changed) == 1
    index, before, after = changed[0]
    chat = next(s for s in SIM_PLATFORMS if s.chat is not None)
    first, second = shared.accounts[chat.name]
    position = [a for s in SIM_PLATFORMS for a in shared.accounts[s.name]].index(second)
    assert index == position
    assert before[1:] == after[1:]  # only the id differs ...
    assert after[0] in {m.message_id for c in first.conversations for m in c.messages}
    assert (
        SimulatorState(5, lambda: NOW, shared_message_ids=1).accounts
        == SimulatorState(5, lambda: NOW).accounts
    )  # ... and with one page there is nothing to share
