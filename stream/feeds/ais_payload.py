"""AIS payload decoding with pyais: positions (1, 2, 3, 18, 19) and static data (5, 19, 24)."""

from __future__ import annotations

import enum
import re
from typing import Any

from pyais.bit_vector import bit_vector
from pyais.constants import NavigationStatus
from pyais.messages import MSG_CLASS

from stream.feeds.base import RecordError

POSITION_TYPES = frozenset({1, 2, 3, 18, 19})
STATIC_TYPES = frozenset({5, 19, 24})
TYPE_NAMES = {
    4: "base station report",
    6: "addressed binary message",
    7: "binary acknowledge",
    8: "binary broadcast message",
    9: "SAR aircraft position",
    10: "UTC/date inquiry",
    11: "UTC/date response",
    12: "addressed safety message",
    14: "safety broadcast",
    15: "interrogation",
    16: "assignment mode command",
    17: "DGNSS broadcast",
    20: "data link management",
    21: "aid-to-navigation report",
    22: "channel management",
    23: "group assignment",
    27: "long-range position",
}
_SIXBIT = re.compile(r"^[0-W`-w]+$")
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def _name(value: Any) -> str | None:
    """An enum member as snake_case text (None for plain numbers)."""
    return _SNAKE.sub("_", value.name).lower() if isinstance(value, enum.Enum) else None


NAV_STATUS = {int(s): str(_name(s)) for s in NavigationStatus}


def _text(value: Any) -> str | None:
    cleaned = str(value or "").replace("@", " ").strip()
    return cleaned or None


def _position(msg: Any) -> tuple[list[float], dict[str, Any]]:
    lon, lat = float(msg.lon), float(msg.lat)
    if lon == 181.0 or lat == 91.0:
        raise RecordError("position not available (lon 181 / lat 91)", "no_position")
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise RecordError(f"position lon={lon} lat={lat} is outside WGS84", "invalid_coordinates")
    speed, course, heading = float(msg.speed), float(msg.course), int(msg.heading)
    fields: dict[str, Any] = {"mmsi": int(msg.mmsi), "msg_type": int(msg.msg_type)}
    if speed < 102.3:
        fields["sog"] = speed
    if course < 360.0:
        fields["cog"] = course
    if heading < 360:
        fields["heading"] = heading
    status = getattr(msg, "status", None)
    if status is not None:
        fields["nav_status"] = NAV_STATUS.get(int(status), "undefined")
    return [lon, lat], fields


def _eta(msg: Any) -> str | None:
    month, day, hour, minute = int(msg.month), int(msg.day), int(msg.hour), int(msg.minute)
    if not (1 <= month <= 12 and 1 <= day <= 31) or hour > 23 or minute > 59:
        return None
    return f"--{month:02d}-{day:02d}T{hour:02d}:{minute:02d}Z"


def _static(msg: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if hasattr(msg, "shipname"):
        found["name"] = _text(msg.shipname)
    if hasattr(msg, "callsign"):
        found["callsign"] = _text(msg.callsign)
    if getattr(msg, "imo", 0):
        found["imo"] = int(msg.imo)
    if getattr(msg, "ship_type", None) is not None and int(msg.ship_type):
        found["ship_type"] = int(msg.ship_type)
        found["ship_type_name"] = _name(msg.ship_type)
    if hasattr(msg, "to_bow") and hasattr(msg, "to_port"):
        found["length_m"] = (int(msg.to_bow) + int(msg.to_stern)) or None
        found["width_m"] = (int(msg.to_port) + int(msg.to_starboard)) or None
    if hasattr(msg, "destination"):
        found["destination"] = _text(msg.destination)
        found["eta"] = _eta(msg)
        found["draught_m"] = float(msg.draught) or None
    return found


def decode_payload(payload: str, fill_bits: int) -> tuple[int, int, dict[str, Any]]:
    """(type, MMSI, fields) of an assembled payload; ``_position``/``_static`` keys as decoded."""
    if not _SIXBIT.match(payload):
        raise RecordError("payload holds characters outside AIS 6-bit armouring", "undecodable")
    try:
        vector = bit_vector(payload.encode("ascii"), fill_bits)
        msg_type = int(vector.get(0, 6))
        if msg_type not in POSITION_TYPES and msg_type not in STATIC_TYPES:
            what = TYPE_NAMES.get(msg_type, "unknown type")
            raise RecordError(
                f"AIS message type {msg_type} ({what}) carries no vessel position or static data",
                "unsupported_type",
            )
        msg = MSG_CLASS[msg_type].from_vector(vector)
        mmsi = int(msg.mmsi)
        fields: dict[str, Any] = {}
        if msg_type in POSITION_TYPES:
            fields["_position"], more = _position(msg)
            fields.update(more)
        if msg_type in STATIC_TYPES:
            fields["_static"] = _static(msg)
    except RecordError:
        raise
    except Exception as exc:  # pyais raises many types on hostile payloads
        raise RecordError(f"payload does not decode: {type(exc).__name__}", "undecodable") from None
    return msg_type, mmsi, fields
