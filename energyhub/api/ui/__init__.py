"""The plan review page at /ui: server-rendered HTML with inline SVG charts, no external assets."""

from __future__ import annotations

from fastapi import APIRouter

from energyhub.api.ui import auth, carbon_page, pages

router = APIRouter()
router.include_router(auth.router)
router.include_router(pages.router)
router.include_router(carbon_page.router)
