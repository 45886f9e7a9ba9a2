"""What the PDA says, in Simplified Chinese and English. Pure: the Kivy screens look texts up
here by key, so a missing translation is a test failure, not a blank button."""

from __future__ import annotations

LANGUAGES = ("zh", "en")

TEXTS: dict[str, dict[str, str]] = {
    "app_title": {"zh": "一码 出库扫描", "en": "Yima outbound scanning"},
    "login": {"zh": "登录", "en": "Log in"},
    "username": {"zh": "用户名", "en": "User name"},
    "password": {"zh": "密码", "en": "Password"},
    "settings": {"zh": "设置", "en": "Settings"},
    "orders": {"zh": "出库订单", "en": "Orders"},
    "refresh": {"zh": "刷新", "en": "Refresh"},
    "open": {"zh": "打开", "en": "Open"},
    "dealer": {"zh": "经销商", "en": "Dealer"},
    "region": {"zh": "发往区域", "en": "Region"},
    "total": {"zh": "合计", "en": "Total"},
    "scan_here": {"zh": "请扫描箱码或产品码", "en": "Scan a case or item code"},
    "acknowledge": {"zh": "确认错误", "en": "Acknowledge"},
    "undo": {"zh": "撤销", "en": "Undo"},
    "exceptions": {"zh": "异常", "en": "Exceptions"},
    "complete": {"zh": "完成出库", "en": "Complete"},
    "back": {"zh": "返回", "en": "Back"},
    "summary": {"zh": "出库汇总", "en": "Summary"},
    "short_reason": {
        "zh": "短发原因（有缺货时必填）",
        "en": "Short-ship reason (needed when short)",
    },
    "confirm_complete": {"zh": "确认完成", "en": "Confirm"},
    "hub_url": {"zh": "服务器地址", "en": "Hub URL"},
    "device_id": {"zh": "设备编号", "en": "Device id"},
    "language": {"zh": "语言", "en": "Language"},
    "scanner": {"zh": "扫描方式", "en": "Scanner input"},
    "save": {"zh": "保存", "en": "Save"},
    "queued": {"zh": "条待处理", "en": "queued"},
    "sync_idle": {"zh": "已同步", "en": "Synced"},
    "sync_pending": {"zh": "待上传", "en": "Pending"},
    "sync_syncing": {"zh": "同步中", "en": "Syncing"},
    "sync_offline": {"zh": "离线", "en": "Offline"},
    "sync_error": {"zh": "同步出错", "en": "Sync error"},
    "last_sync": {"zh": "上次同步", "en": "Last sync"},
    "never": {"zh": "从未", "en": "never"},
    "no_orders": {"zh": "没有待出库订单", "en": "No open orders"},
    "result_ok": {"zh": "成功", "en": "OK"},
    "result_wrong_product": {"zh": "产品不符", "en": "Wrong product"},
    "result_over_quantity": {"zh": "超出数量", "en": "Over quantity"},
    "result_duplicate_in_order": {"zh": "重复扫描", "en": "Already scanned"},
    "result_already_shipped": {"zh": "已出库", "en": "Already shipped"},
    "result_not_commissioned": {"zh": "未赋码激活", "en": "Not commissioned"},
    "result_unknown": {"zh": "未知码", "en": "Unknown code"},
    "result_bad_check": {"zh": "无效码", "en": "Not a valid code"},
    "result_conflict": {"zh": "已被其他订单占用", "en": "Claimed by another order"},
    "removed": {"zh": "已移除", "en": "Removed"},
    "state_complete": {"zh": "已完成", "en": "Complete"},
    "state_short_shipped": {"zh": "短发完成", "en": "Short-shipped"},
    "state_completing": {"zh": "等待服务器确认", "en": "Waiting for the hub"},
    "state_refused": {"zh": "服务器拒绝", "en": "Refused by the hub"},
    "login_failed": {"zh": "登录失败", "en": "Login failed"},
}


def text(key: str, lang: str) -> str:
    """The text for ``key`` in ``lang`` (zh or en)."""
    return TEXTS[key][lang if lang in LANGUAGES else "zh"]


def result_text(result: str, lang: str) -> str:
    return text(f"result_{result}", lang)
