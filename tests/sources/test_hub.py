"""Hub ids (``hf:ORG/NAME[@REVISION]``): huggingface_hub's real loading code against a Hub-like server on
127.0.0.1 and a cache laid out as huggingface_hub lays it out. Never the internet."""

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import torch

from torchcost.cli import main
from torchcost.from_spec import profile_spec
from torchcost.sources import ModelSourceError, load_model
from torchcost.sources.hub import HubId, hub_id

hub_constants = pytest.importorskip("huggingface_hub.constants")
pytest.importorskip("transformers")

COMMIT = "c0ffee" + "0" * 34
TOKEN = "hf_test_token"
# A one-layer GPT-2: wte 100*32 + wpe 64*32 = 5,248; the block: ln_1 64 + c_attn 32*96+96 = 3,168 + c_proj
# 32*32+32 = 1,056 + ln_2 64 + c_fc 32*128+128 = 4,224 + c_proj 128*32+32 = 4,128 -> 12,704; ln_f 64; the LM
# head is tied to wte. Total 5,248 + 12,704 + 64 = 18,016.
TINY_GPT2 = {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2, "vocab_size": 100, "n_positions": 64}
TINY_GPT2_PARAMS = 18_016


class FakeHub(BaseHTTPRequestHandler):
    """Answers ``/ORG/NAME/resolve/REVISION/FILE`` as the Hub does: the file with its commit and ETag, or the
    status and ``X-Error-Code`` of a gated repo (without the token), an unknown repo or a missing file."""

    files: ClassVar[dict[tuple[str, str], bytes]] = {}
    gated: ClassVar[set[str]] = {"acme/gated"}
    requests: ClassVar[list[str]] = []

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, with_body: bool) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
        self.requests.append(f"{self.command} {repo} {filename}")
        if repo in self.gated and self.headers.get("authorization") != f"Bearer {TOKEN}":
            return self._error(401, "GatedRepo")
        if not any(r == repo for r, _ in self.files):
            return self._error(404, "RepoNotFound")
        data = self.files.get((repo, filename))
        if data is None:
            return self._error(404, "EntryNotFound")
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if with_body:
            self.wfile.write(data)

    def _error(self, status: int, code: str) -> None:
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        self._answer(False)

    def do_GET(self):
        self._answer(True)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty Hub cache, and no token from this machine's login."""
    folder = tmp_path / "hub"
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(folder))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return folder


@pytest.fixture
def fake_hub(cache, monkeypatch):
    FakeHub.files = {
        ("acme/tiny", "config.json"): json.dumps(TINY_GPT2).encode(),
        ("acme/gated", "config.json"): json.dumps(TINY_GPT2).encode(),
        ("acme/weights-only", "model.safetensors"): b"not a config",
        ("acme/vit", "config.json"): json.dumps(VIT).encode(),
        ("acme/vit", "preprocessor_config.json"): json.dumps(VIT_PROCESSOR).encode(),
    }
    FakeHub.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    yield FakeHub
    server.shutdown()
    server.server_close()


VIT = {
    "model_type": "vit",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "image_size": 64,
    "patch_size": 16,
}
VIT_PROCESSOR = {"image_processor_type": "ViTImageProcessor", "size": {"height": 64, "width": 64}, "do_resize": True}


def lay_out(cache, repo: str, files: dict[str, dict]) -> None:
    """A repo in the cache as huggingface_hub lays it out: refs/main names a commit, its snapshot holds links to
    blobs named by their hashes."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(COMMIT)
    (folder / "blobs").mkdir()
    (folder / "snapshots" / COMMIT).mkdir(parents=True)
    for name, values in files.items():
        data = json.dumps(values).encode()
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (folder / "snapshots" / COMMIT / name).symlink_to(blob)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("meta-llama/Llama-3.1-8B", HubId("meta-llama/Llama-3.1-8B", None)),
        ("Qwen/Qwen3-30B-A3B@main", HubId("Qwen/Qwen3-30B-A3B", "main")),
        ("org/model@" + COMMIT, HubId("org/model", COMMIT)),
        ("gpt2", None),  # a model type
        ("path/to/config.json", None),  # a config file
        ("a/b/c", None),
    ],
)
def test_hub_ids_are_told_from_model_types_and_paths(name, expected):
    assert hub_id(name) == expected


def test_a_checkpoint_is_fetched_into_the_cache_then_read_from_it_offline(fake_hub, cache, monkeypatch):
    result = profile_spec("hf:acme/tiny")
    assert result.params.total == TINY_GPT2_PARAMS
    assert any(f"at commit {COMMIT[:12]}" in note for note in result.notes)
    assert (cache / "models--acme--tiny" / "snapshots" / COMMIT / "config.json").is_file()
    assert "GET acme/tiny model.safetensors" not in fake_hub.requests  # never the weights
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    fake_hub.requests.clear()
    assert profile_spec("hf:acme/tiny").params.total == TINY_GPT2_PARAMS
    assert fake_hub.requests == []


def test_a_checkpoint_s_own_image_processor_makes_its_images(fake_hub):
    loaded = load_model("hf:acme/vit", "meta")
    assert ("GET acme/vit preprocessor_config.json") in fake_hub.requests
    processor = loaded.keyword_inputs.image_processor
    assert processor.size == {"height": 64, "width": 64}  # the checkpoint's; ViT's default processor says 224
    made = loaded.keyword_inputs(1, None, torch.Generator().manual_seed(0))
    assert tuple(made["pixel_values"].shape[-2:]) == (64, 64)


def test_a_gated_repo_uses_the_user_s_token(fake_hub, monkeypatch):
    with pytest.raises(ModelSourceError, match="gated repo") as error:
        load_model("hf:acme/gated", "meta")
    assert "HF_TOKEN" in str(error.value) and "\n" not in str(error.value)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert profile_spec("hf:acme/gated").params.total == TINY_GPT2_PARAMS


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("acme/unknown", "no such repo on the Hub"),
        ("acme/weights-only", "has no config.json"),
    ],
)
def test_each_hub_failure_is_one_line(fake_hub, name, message):
    with pytest.raises(ModelSourceError, match=message) as error:
        load_model(f"hf:{name}", "meta")
    assert "\n" not in str(error.value)


def test_offline_a_repo_missing_from_the_cache_says_so(cache, monkeypatch):
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelSourceError, match=r"not in the Hub cache .* HF_HUB_OFFLINE is set") as error:
        load_model("hf:acme/tiny", "meta")
    assert "\n" not in str(error.value)


def test_the_cli_profiles_a_hub_id_from_a_test_made_cache_offline(cache, monkeypatch, capsys):
    """The cache's config wins over the shipped preset of the same checkpoint: here a two-layer Llama."""
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 1000,
    }
    lay_out(cache, "meta-llama/Llama-3.1-8B", {"config.json": config})
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["profile", "hf:meta-llama/Llama-3.1-8B", "--brief"]) == 0
    # embeddings and head 2 * 1000*64 = 128,000; per layer q 64*64 = 4,096, k and v 64*32 = 2,048 each, o 4,096,
    # MLP 3 * 64*128 = 24,576, two norms 128 -> 36,992, twice = 73,984; final norm 64. Total 202,048.
    assert "params 202.05 k" in capsys.readouterr().out


def test_a_preset_s_hub_id_works_offline_without_a_cache(cache, monkeypatch):
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    loaded = load_model("hf:meta-llama/Llama-3.2-1B", "meta")
    assert loaded.model.config.num_hidden_layers == 16
    assert "as shipped with torchcost" in loaded.note


def test_a_preset_named_with_a_revision_asks_the_hub(cache, monkeypatch):
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelSourceError, match="not in the Hub cache"):
        load_model("hf:meta-llama/Llama-3.2-1B@main", "meta")
