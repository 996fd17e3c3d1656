"""What an editor does from the web UI: the same commands and handlers as the REST API,
sent from forms that carry the session's token. Each answers with the model's page as it
now stands (a read of one model reflects the command at once), or with the API's words
for what was refused."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.services import get_services
from commands.errors import VersionMismatch
from commands.handlers import handle
from commands.messages import (
    ArchiveModel,
    Command,
    CompleteTraining,
    CreateModel,
    DeployModel,
    FailTraining,
    RollBackDeployment,
    TrainModel,
    UndeployModel,
    UpdateModel,
)
from commands.registry import CommandContext
from ui.access import Viewer, ViewerDep, check_form, correlation_of
from ui.rendering import from_htmx, refusal, said, said_in_place
from write_model.access import Action

router = APIRouter(prefix="/ui/models", include_in_schema=False)
Token = Annotated[str | None, Form()]
Text = Annotated[str, Form(max_length=10_000)]


class Refused(Exception):
    """A command the registry refused: its status and the API's words for it."""

    def __init__(self, status: int, detail: str, model_id: UUID | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.model_id = status, detail, model_id
        self.draft: dict[str, str] | None = None  # a refused registration, to show again


async def _send(
    request: Request,
    who: Viewer,
    token: str | None,
    build: Any,
    model_id: UUID | None = None,
    expected_version: int | None = None,
) -> Response:
    """Check the form, build the command, send it; then the model's page."""
    check_form(request, who, token)
    if not who.principal.may(Action.CHANGE):
        raise Refused(403, f"the {who.principal.role} role may not change here", model_id)
    try:
        command: Command = build()
    except (ValidationError, ValueError) as invalid:
        raise Refused(422, _said(invalid), model_id) from None
    ctx = CommandContext(
        actor=who.principal.name,
        projects=who.principal.visible_projects,
        expected_version=expected_version,
        correlation_id=correlation_of(request),
    )
    try:
        result = await handle(get_services(request).registry, command, ctx)
    except VersionMismatch:
        detail = (
            "the model changed while you edited it: here it is as it stands now; "
            "make your change again if it still applies"
        )
        raise Refused(412, detail, model_id) from None
    except Exception as error:
        status, detail = refusal(error)
        raise Refused(status, detail, model_id) from None
    if from_htmx(request):  # a form that stays on its page: the timeline shows the change
        return said_in_place(request, f"Done: {_outcome(command)}.")
    return RedirectResponse(f"/ui/models/{result.id}", status_code=303)


def _outcome(command: Command) -> str:
    environment = getattr(command, "environment", "")
    if isinstance(command, DeployModel):
        return f"deployed to {environment}"
    if isinstance(command, RollBackDeployment):
        return f"{environment} rolled back"
    if isinstance(command, UndeployModel):
        return f"{environment} no longer served"
    return "sent"


def _said(invalid: Exception) -> str:
    return said(invalid) if isinstance(invalid, ValidationError) else str(invalid)


def _tags(text: str) -> list[str]:
    return [tag.strip() for tag in text.split(",") if tag.strip()]


def _metrics(text: str) -> dict[str, float]:
    """``accuracy=0.93, loss=0.2`` (commas or new lines between them)."""
    metrics: dict[str, float] = {}
    for part in text.replace("\n", ",").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"metrics: write each as name=value, not {part.strip()!r}")
        try:
            metrics[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"metrics: {value.strip()!r} is not a number") from None
    return metrics


@router.post("")
async def register(
    request: Request,
    who: ViewerDep,
    name: Text,
    task: Text,
    framework: Text,
    project: Annotated[str, Form(max_length=200)] = "default",
    description: Text = "",
    tags: Text = "",
    form_token: Token = None,
) -> Response:
    def build() -> Command:
        return CreateModel(
            name=name,
            project=project,
            task=task,
            framework=framework,
            description=description,
            tags=_tags(tags),
        )

    try:
        return await _send(request, who, form_token, build)
    except Refused as refused:
        if not who.principal.may(Action.CHANGE):  # (no form to show it again in)
            raise
        refused.draft = {"name": name, "project": project, "task": task}
        refused.draft |= {"framework": framework, "description": description, "tags": tags}
        raise


@router.post("/{model_id}/edit")
async def edit(
    request: Request,
    model_id: UUID,
    who: ViewerDep,
    version: Annotated[int, Form()],
    description: Text = "",
    tags: Text = "",
    owner: Text = "",
    form_token: Token = None,
) -> Response:
    """Sent with the version the form showed (If-Match): an edit never overwrites a
    change the editor did not see."""

    def build() -> Command:
        changes: dict[str, Any] = {"description": description, "tags": _tags(tags)}
        if owner.strip():
            changes["owner"] = owner
        return UpdateModel(model_id=model_id, **changes)

    return await _send(request, who, form_token, build, model_id, expected_version=version)


@router.post("/{model_id}/train")
async def train(
    request: Request, model_id: UUID, who: ViewerDep, dataset: Text, form_token: Token = None
) -> Response:
    return await _send(
        request, who, form_token, lambda: TrainModel(model_id=model_id, dataset=dataset), model_id
    )


@router.post("/{model_id}/runs/{run_id}/complete")
async def complete(
    request: Request,
    model_id: UUID,
    run_id: str,
    who: ViewerDep,
    metrics: Text,
    form_token: Token = None,
) -> Response:
    def build() -> Command:
        return CompleteTraining(model_id=model_id, run_id=run_id, metrics=_metrics(metrics))

    return await _send(request, who, form_token, build, model_id)


@router.post("/{model_id}/runs/{run_id}/fail")
async def fail(
    request: Request,
    model_id: UUID,
    run_id: str,
    who: ViewerDep,
    reason: Text,
    form_token: Token = None,
) -> Response:
    def build() -> Command:
        return FailTraining(model_id=model_id, run_id=run_id, reason=reason)

    return await _send(request, who, form_token, build, model_id)


@router.post("/{model_id}/deploy")
async def deploy(
    request: Request,
    model_id: UUID,
    who: ViewerDep,
    environment: Text,
    model_version: Annotated[int | None, Form()] = None,
    form_token: Token = None,
) -> Response:
    def build() -> Command:
        return DeployModel(model_id=model_id, environment=environment, model_version=model_version)

    return await _send(request, who, form_token, build, model_id)


@router.post("/{model_id}/archive")
async def archive(
    request: Request,
    model_id: UUID,
    who: ViewerDep,
    reason: Text = "",
    confirm: Annotated[bool, Form()] = False,
    form_token: Token = None,
) -> Response:
    def build() -> Command:
        _confirmed(confirm)
        return ArchiveModel(model_id=model_id, reason=reason)

    return await _send(request, who, form_token, build, model_id)


# What a confirmed change of an environment sends, by the form's last path segment (this
# route comes last: its path would take any other action's).
ENVIRONMENT_CHANGES: dict[str, type[UndeployModel] | type[RollBackDeployment]] = {
    "undeploy": UndeployModel,
    "rollback": RollBackDeployment,
}


@router.post("/{model_id}/{change}")
async def change_environment(
    request: Request,
    model_id: UUID,
    change: Literal["undeploy", "rollback"],
    who: ViewerDep,
    environment: Text,
    confirm: Annotated[bool, Form()] = False,
    form_token: Token = None,
) -> Response:
    """Undeploy an environment or roll it back: both ask for a confirmation."""

    def build() -> Command:
        _confirmed(confirm)
        return ENVIRONMENT_CHANGES[change](model_id=model_id, environment=environment)

    return await _send(request, who, form_token, build, model_id)


def _confirmed(confirm: bool) -> None:
    if not confirm:
        raise ValueError("confirm: tick the box to confirm")
