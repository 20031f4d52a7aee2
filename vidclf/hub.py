"""Hugging Face Hub: download a checkpoint (cached by huggingface_hub) and push one with its model card."""

from __future__ import annotations

from pathlib import Path

from vidclf.checkpoint import load_checkpoint
from vidclf.errors import VidclfError


def _split_spec(spec: str) -> tuple[str, str]:
    parts = spec.strip("/").split("/")
    if len(parts) < 2:
        raise VidclfError(f"Hub model {spec!r}: expected 'owner/repo' or 'owner/repo/file.pt'")
    return "/".join(parts[:2]), "/".join(parts[2:]) or "model.pt"


def download_checkpoint(spec: str) -> Path:
    """Local path of the Hub checkpoint ``owner/repo[/file.pt]``, downloaded once and cached."""
    from huggingface_hub import hf_hub_download

    repo_id, filename = _split_spec(spec)
    try:
        path = Path(hf_hub_download(repo_id=repo_id, filename=filename))
    except Exception as e:  # offline, missing repo or file, auth: all are "cannot get it now"
        raise VidclfError(
            f"could not download {filename} from the Hub repo {repo_id} ({type(e).__name__}); "
            "offline or wrong name? The local models still work"
        ) from None
    load_checkpoint(path)  # refuse anything that is not a vidclf checkpoint before offering it
    return path


def push_checkpoint(
    checkpoint: str | Path, repo_id: str, card: str | Path | None = None, token: str | None = None
) -> str:
    """Upload ``checkpoint`` as ``model.pt`` (and ``card`` as ``README.md``) to the Hub model repo ``repo_id``."""
    from huggingface_hub import HfApi

    ck = load_checkpoint(checkpoint)
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", exist_ok=True)
        api.upload_file(path_or_fileobj=str(checkpoint), path_in_repo="model.pt", repo_id=repo_id)
        if card is not None:
            api.upload_file(path_or_fileobj=str(card), path_in_repo="README.md", repo_id=repo_id)
        elif Path(checkpoint).with_suffix(".md").is_file():
            api.upload_file(
                path_or_fileobj=str(Path(checkpoint).with_suffix(".md")), path_in_repo="README.md", repo_id=repo_id
            )
    except Exception as e:
        raise VidclfError(
            f"could not push to the Hub repo {repo_id} ({type(e).__name__}: {str(e)[:200]}); "
            "offline, or not logged in (huggingface-cli login / HF_TOKEN)?"
        ) from None
    return f"pushed {Path(checkpoint).name} ({ck.backbone}, {len(ck.classes)} classes) to {repo_id}"
