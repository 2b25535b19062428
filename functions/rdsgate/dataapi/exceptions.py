"""The Data API's modelled exceptions: which one stands for each rdsgate error, and its message.

boto3's ``rds-data`` client raises its own exception classes from the ``x-amzn-ErrorType``
header; a database error's message carries the engine's codes as the Data API words them,
with MySQL's SQLSTATE looked up from the server's error number.
"""

from __future__ import annotations

from typing import Any

from .. import errors

# rdsgate error code → (Data API exception, HTTP status)
ERROR_SHAPES = {
    "InvalidRequest": ("BadRequestException", 400),
    "RequestTooLarge": ("BadRequestException", 400),
    "NotFound": ("DatabaseNotFoundException", 404),
    "SqlError": ("DatabaseErrorException", 400),
    "AuthenticationFailed": ("DatabaseErrorException", 400),
    "Forbidden": ("ForbiddenException", 403),
    "ReadOnlyViolation": ("DatabaseErrorException", 400),
    "GuardrailViolation": ("ForbiddenException", 403),
    "DatabaseUnavailable": ("DatabaseUnavailableException", 504),
    "QueryTimeout": ("StatementTimeoutException", 400),
    "ResultTooLarge": ("BadRequestException", 400),
    "InvalidDefinition": ("InternalServerErrorException", 500),
    "InternalError": ("InternalServerErrorException", 500),
    "TransactionNotFound": ("TransactionNotFoundException", 404),
    "TransactionExpired": ("TransactionNotFoundException", 404),  # the Data API has no separate "expired"
    "TooManySessions": ("ServiceUnavailableError", 503),
}

# MySQL's SQLSTATE for each server error number whose SQLSTATE is not the generic HY000, from
# the server's error reference (shared by MariaDB below 1900; 3000-3999 are MySQL's own). The
# driver reports the error number only, so the Data API's "SQLState" is looked up here.
_MYSQL_SQLSTATES_BY_STATE = {
    "01000": "1249 1261 1262 1265 1311 1642 3519 3565 3751",
    "01S00": "3713",
    "01S01": "3715",
    "02000": "1329 1643",
    "08004": "1040 1251",
    "08S01": (
        "1042 1043 1047 1053 1080 1081 1152 1153 1154 1155 1156 1157 1158 1159 1160 1161 1184 1189 "
        "1190 1218 3068"
    ),
    "0A000": "1312 1314 1335 1336 1415 1845 1846",
    "0K000": "1645",
    "0Z002": "3004",
    "20000": "1339",
    "21000": "1222 1241 1242",
    "21S01": "1058 1136",
    "22001": "1406 3907",
    "22003": "1264 1416 1690 3155 3669 3706 3752 3904",
    "22004": "1138 1263",
    "22007": "1292 1367",
    "22008": "1441",
    "22012": "1365",
    "22018": "3156 3903",
    "2201E": "3020",
    "22023": "3037 3558 3559 3560 3561 3562 3563 3564 3727",
    "22032": "3140 3141 3144 3145 3146 3147 3150 3151 3157 3158 3853",
    "22034": "3967",
    "22035": "3665 3966",
    "2203F": "3666",
    "22S00": "3520 3618 3682 3704 3705 3726 3741 3742 3743 3744",
    "22S01": "3516",
    "22S02": "3616 3731",
    "22S03": "3617 3732",
    "23000": "1022 1048 1052 1062 1169 1216 1217 1451 1452 1557 1586 1761 1762 1859 3673",
    "24000": "1325 1326",
    "25000": "1179 1207",
    "25001": "1568",
    "25006": "1792",
    "28000": "1045 1698 1873",
    "2F003": "1303",
    "2F005": "1321",
    "35000": "1758",
    "3D000": "1046",
    "40000": "3101",
    "40001": "1213",
    "42000": (
        "1044 1049 1055 1056 1057 1059 1061 1063 1064 1065 1066 1067 1068 1069 1070 1071 1072 1073 "
        "1074 1075 1083 1084 1090 1091 1101 1102 1103 1104 1106 1107 1110 1112 1113 1115 1118 1120 "
        "1121 1131 1132 1133 1139 1140 1141 1142 1143 1144 1145 1147 1148 1149 1162 1163 1164 1166 "
        "1167 1170 1171 1172 1173 1176 1177 1178 1203 1211 1226 1227 1230 1231 1232 1234 1235 1239 "
        "1248 1250 1252 1253 1280 1281 1286 1304 1305 1308 1309 1310 1313 1315 1316 1318 1319 1320 "
        "1322 1323 1324 1327 1330 1331 1332 1333 1337 1338 1370 1403 1407 1410 1413 1414 1425 1426 "
        "1427 1437 1439 1453 1458 1460 1461 1463 1582 1583 1584 1630 1641 1687 1701 3057 3061 3119 "
        "3131 3143 3148 3149 3152 3153 3154 3165 3202 3630 3667 3670 3753 3948 3999"
    ),
    "42S01": "1050",
    "42S02": "1051 1109 1146",
    "42S12": "1082",
    "42S21": "1060",
    "42S22": "1054 1247",
    "42Y07": "3503",
    "70100": "1317",
    "HY001": "1037 1038",
    "SR000": "3714",
    "SR001": "3521 3548",
    "SR002": "3517 3736 3737 3738 3739 3740",
    "SR003": "3518",
    "SR004": "3712",
    "SR005": "3716",
    "SR006": "3708 3709 3710 3711 3717 3718",
    "SU001": "3882 3902",
    "XA100": "1402",
    "XA102": "1614",
    "XA106": "1613",
    "XAE03": "1401",
    "XAE04": "1397",
    "XAE05": "1398",
    "XAE07": "1399",
    "XAE08": "1440",
    "XAE09": "1400",
}
MYSQL_SQLSTATES = {int(number): state for state, numbers in _MYSQL_SQLSTATES_BY_STATE.items() for number in numbers.split()}


def error_response(error: errors.RdsgateError) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers and body of the Data API exception standing for ``error``."""
    name, status = ERROR_SHAPES.get(error.code, ("InternalServerErrorException", 500))
    return status, {"x-amzn-ErrorType": name}, {"message": error_message(error)}


def error_message(error: errors.RdsgateError) -> str:
    """The message as the Data API words it: a database error carries the engine's codes.

    PostgreSQL: ``ERROR: <message>[; Hint: …][; Position: n]; SQLState: 42P01``.
    MySQL: ``<message>; Error code: 1146; SQLState: 42S02``.
    """
    details = error.details
    if error.code in ("SqlError", "ReadOnlyViolation"):
        if "errno" in details:
            state = details.get("sqlstate") or MYSQL_SQLSTATES.get(details["errno"], "HY000")
            return f"{error.message}; Error code: {details['errno']}; SQLState: {state}"
        if "sqlstate" in details:
            parts = [f"ERROR: {error.message}"]
            parts += [f"{label}: {details[key]}" for key, label in (("hint", "Hint"), ("position", "Position")) if details.get(key)]
            return "; ".join(parts + [f"SQLState: {details['sqlstate']}"])
    if "hint" in details:
        return f"{error.message} ({details['hint']})"
    return error.message
