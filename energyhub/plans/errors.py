"""Plan lifecycle errors: an unknown plan, or an action its current state does not allow."""

from __future__ import annotations

from energyhub.errors import EnergyhubError


class PlanNotFoundError(EnergyhubError):
    """No stored plan has this id."""

    def __init__(self, plan_id: int) -> None:
        self.plan_id = plan_id
        super().__init__(f"no plan {plan_id}")


class PlanStateError(EnergyhubError):
    """The plan's current status does not allow the action; the message names both."""

    def __init__(self, plan_id: int, status: str, action: str, allowed_from: list[str]) -> None:
        self.plan_id = plan_id
        self.status = status
        self.action = action
        super().__init__(
            f"plan {plan_id} is {status}: cannot {action} it (only a plan that is "
            f"{' or '.join(allowed_from)} can be)"
        )


class PlanSiteError(EnergyhubError):
    """The plan's site is not in the site file this process reads (another file was loaded
    since): nothing to compare it with."""

    def __init__(self, plan_id: int, level: str, site_id: str) -> None:
        self.plan_id = plan_id
        super().__init__(
            f"plan {plan_id} is of the {level} {site_id!r}, which the site file (ENERGYHUB_"
            "SITE_FILE) does not hold: compare it with the site file it was planned from"
        )
