"""The admin's "Jobs" page: each scheduled job, its schedule and next run, its last runs.

For the dispatch job it also shows the outbox: how many signals wait, went, or failed, and the
latest failed signals with the hub's answer (no payload: a signal's uid, site, rule, attempts).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template

from admin.web import ActorDep, ContextDep
from nightreg.i18n import gettext
from nightreg.jobs import crontabs, job_specs, next_run
from nightreg.services import audit, outbox, signals
from nightreg.services import jobs as job_service
from nightreg.vocabulary import (
    JOB_COUNT_FLAGS,
    JOB_COUNT_LABELS,
    JOB_LABELS,
    JOB_RUN_STATUS_LABELS,
)
from nightreg.web import see_other

MANAGE = {"permission": "jobs.manage"}


def readable_counts(job: str, counts: dict[str, int]) -> list[tuple[str, int | None]]:
    """A run's counters as (label in the reader's language, number), the empty ones left out."""
    labels = JOB_COUNT_LABELS.get(job, {})
    return [
        (
            gettext(labels[key]) if key in labels else key.replace("_", " "),
            None if key in JOB_COUNT_FLAGS else value,
        )
        for key, value in counts.items()
        if value
    ]


def started_by(trigger: str) -> str:
    """Who started a run: the schedule, the command line, or a person (by name)."""
    if trigger == "schedule":
        return gettext("Schedule")
    if trigger == "cli":
        return gettext("Command line")
    if trigger == "catch-up":
        return gettext("Catch-up after a restart")
    kind, _, rest = trigger.partition(" ")
    return rest if kind.startswith("user:") and rest else trigger


class JobsController(Controller):
    path = "/jobs"

    @get("/", name="admin:jobs", opt=MANAGE)
    async def jobs(self, request: HTMXRequest, ctx: ContextDep) -> Template:
        now = ctx.clock.now()
        rows = []
        for name, crontab in crontabs(ctx.settings).items():
            runs = await job_service.recent_runs(ctx.db, name)
            rows.append(
                {
                    "name": name,
                    "crontab": crontab,
                    "next_run": next_run(crontab, ctx.settings, now),
                    "label": gettext(JOB_LABELS[name]) if name in JOB_LABELS else name,
                    "runs": [
                        {
                            "run": run,
                            "counts": readable_counts(name, run.counts or {}),
                            "by": started_by(run.trigger),
                        }
                        for run in runs
                    ],
                }
            )
        return Template(
            template_name="admin/jobs.html",
            context={
                "jobs": rows,
                "tz": ctx.settings.tz,
                "in_serve": ctx.settings.scheduler_in_serve,
                "ran": request.query_params.get("ran", ""),
                "retried": request.query_params.get("retried", ""),
                "outbox": await outbox.outbox(ctx.db, ctx.settings),
                "job_labels": {name: gettext(label) for name, label in JOB_LABELS.items()},
                "run_status_labels": JOB_RUN_STATUS_LABELS,
            },
        )

    @post("/{job:str}/run", name="admin:job-run", opt=MANAGE)
    async def run(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, job: FromPath[str]
    ) -> Response[Any]:
        specs = job_specs(ctx.settings)
        if job not in specs:
            raise NotFoundException()
        await audit.log(
            ctx.db, actor, "job_run_requested", at=ctx.clock.now(), details={"job": job}
        )
        result = await job_service.run_job(
            ctx.db, specs[job], clock=ctx.clock, holder=job_service.holder_id(),
            trigger=actor.label,
        )  # fmt: skip
        outcome = "busy" if not result.ran else (result.run.status if result.run else "failed")
        return see_other(request, f"/admin/jobs?ran={job}-{outcome}")

    @post("/signals/{uid:str}/retry", name="admin:signal-retry", opt=MANAGE)
    async def retry_signal(
        self, request: HTMXRequest, ctx: ContextDep, actor: ActorDep, uid: FromPath[str]
    ) -> Response[Any]:
        """Send a failed signal again with the next dispatch run."""
        try:
            await signals.retry(ctx.db, actor, uid, now=ctx.clock.now())
        except signals.RetryRefused:
            return see_other(request, "/admin/jobs?retried=refused#outbox")
        return see_other(request, "/admin/jobs?retried=ok#outbox")


ROUTES = [JobsController]
