"""Who publishes: the authority's name and the site's, in one place for pages, feeds, open
data and mail (another city's deployment changes them here)."""

from __future__ import annotations

AUTHORITY = "烟台市市场监督管理局"
SITE_NAME = "烟台市市场监管信用信息公示"
