"""A stand-in for the Hugging Face Hub's HTTP API on the loopback address, for tests that push and download.

It answers what `huggingface_hub` (2.x) calls to create a model repository, commit files and download them, and
nothing else:

- `GET /api/whoami-v2`; `POST /api/repos/create`; `POST /api/validate-yaml` (a model card's front matter must be a
  YAML mapping);
- `POST /api/models/{repo}/preupload/{revision}`: every file is "regular", so its content comes inline in the
  commit (the client asks, and follows the answer: no LFS or Xet transfer is needed), with the git blob id of
  the file already there so that unchanged files are left out of a commit, as on the Hub;
- `POST /api/models/{repo}/commit/{revision}`: the ndjson commit (header, files in base64, deletions);
- `GET /api/models/{repo}[/revision/{revision}]`, `GET /api/models/{repo}/tree/{revision}[/{path}]`,
  `POST /api/models/{repo}/paths-info/{revision}`;
- `HEAD` / `GET /{repo}/resolve/{revision}/{path}` with the headers downloads need: `ETag` (the git blob id),
  `X-Repo-Commit`, `Content-Length`, and `X-Error-Code` on a 404 (`RepoNotFound`, `RevisionNotFound`,
  `EntryNotFound`).

Revisions are `main` or a commit id. Writes need the token (`Authorization: Bearer ...`); a private repository is
invisible without it. Every commit is kept with the repository's whole tree after it, so a test can check what
each push held.
"""

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

USER = "reformer-ko-tester"
TOKEN = "hf_stand_in_token"
REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"
REVISION = r"(?P<revision>[^/]+)"


def git_blob_id(content: bytes) -> str:
    """The id git gives a file's content (what the Hub reports as a regular file's oid and ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Commit:
    oid: str
    message: str
    files: dict[str, bytes]  # the repository's whole tree after this commit
    changed: set[str]  # the paths this commit added or rewrote

    def folder(self, prefix: str) -> dict[str, bytes]:
        """The files under `prefix/`, by their path inside it."""
        return {path[len(prefix) + 1 :]: data for path, data in self.files.items() if path.startswith(prefix + "/")}


@dataclass
class Repository:
    repo_id: str
    private: bool
    commits: list[Commit] = field(default_factory=list)

    def at(self, revision: str) -> Commit | None:
        """The commit `revision` names: `main` (the last commit) or a commit id (7 characters or more)."""
        if revision == "main":
            return self.commits[-1]
        if len(revision) >= 7:
            return next((commit for commit in self.commits if commit.oid.startswith(revision)), None)
        return None


class HubStandIn:
    """The stand-in's state and its server thread: `with HubStandIn() as hub:` serves at `hub.url` until the end
    of the block. `hub.repositories` maps a repository id to its `Repository`."""

    def __init__(self, user=USER, token=TOKEN):
        self.user, self.token = user, token
        self.repositories: dict[str, Repository] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()

    @property
    def environment(self) -> dict:
        """Environment variables (None: unset) that point a Python process's `huggingface_hub` here, logged in."""
        return {"HF_ENDPOINT": self.url, "HF_TOKEN": self.token, "HF_HUB_OFFLINE": None}

    def repository(self, repo_id) -> Repository:
        return self.repositories[repo_id]

    def create(self, repo_id, private) -> bool:
        """Create `repo_id` with an empty first commit, as the Hub does; False if it exists."""
        with self.lock:
            if repo_id in self.repositories:
                return False
            repository = Repository(repo_id, private)
            first = Commit(_commit_id(repo_id, "", "initial commit", {}), "initial commit", {}, set())
            repository.commits.append(first)
            self.repositories[repo_id] = repository
            return True

    def commit(self, repository: Repository, message, additions: dict[str, bytes], deletions, parent=None) -> Commit:
        with self.lock:
            head = repository.commits[-1]
            if parent is not None and not head.oid.startswith(parent):
                raise _Refusal(HTTPStatus.PRECONDITION_FAILED, f"parent commit {parent} is not the head of main")
            files = dict(head.files)
            for path in deletions:
                for existing in [name for name in files if name == path or name.startswith(path.rstrip("/") + "/")]:
                    del files[existing]
            files.update(additions)
            commit = Commit(_commit_id(repository.repo_id, head.oid, message, files), message, files, set(additions))
            repository.commits.append(commit)
            return commit


def _commit_id(repo_id, parent, message, files) -> str:
    digest = hashlib.sha1(f"{repo_id}\0{parent}\0{message}".encode())
    for path in sorted(files):
        digest.update(f"\0{path}\0{git_blob_id(files[path])}".encode())
    return digest.hexdigest()


def _file_entry(path, data) -> dict:
    return {"type": "file", "path": path, "size": len(data), "oid": git_blob_id(data)}


def _folder_entry(path) -> dict:
    return {"type": "directory", "path": path, "oid": git_blob_id(path.encode())}


class _Refusal(Exception):
    """An error answer: status, message and the Hub's `X-Error-Code`."""

    def __init__(self, status, message, error_code=None, commit=None):
        super().__init__(message)
        self.status, self.message, self.error_code, self.commit = status, message, error_code, commit


def _handler_for(hub: HubStandIn):
    routes = [
        ("GET", r"/api/whoami-v2", "whoami"),
        ("POST", r"/api/repos/create", "create_repository"),
        ("POST", r"/api/validate-yaml", "validate_yaml"),
        ("POST", rf"/api/models/{REPO}/preupload/{REVISION}", "preupload"),
        ("POST", rf"/api/models/{REPO}/commit/{REVISION}", "commit"),
        ("GET", rf"/api/models/{REPO}(?:/revision/{REVISION})?", "repository_info"),
        ("GET", rf"/api/models/{REPO}/tree/{REVISION}(?:/(?P<path>.+))?", "tree"),
        ("POST", rf"/api/models/{REPO}/paths-info/{REVISION}", "paths_info"),
        ("GET", rf"/{REPO}/resolve/{REVISION}/(?P<path>.+)", "resolve"),
        ("HEAD", rf"/{REPO}/resolve/{REVISION}/(?P<path>.+)", "resolve"),
    ]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client expects

        def log_message(self, format, *args):  # quiet: tests read the repositories, not the log
            pass

        def do_GET(self):
            self.dispatch("GET")

        def do_HEAD(self):
            self.dispatch("HEAD")

        def do_POST(self):
            self.dispatch("POST")

        def dispatch(self, method):
            url = urlsplit(self.path)
            self.query = parse_qs(url.query)
            self.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = unquote(url.path)
            try:
                for route_method, pattern, name in routes:
                    match = re.fullmatch(pattern, path)
                    if route_method == method and match:
                        return getattr(self, name)(**{key: value for key, value in match.groupdict().items()})
                raise _Refusal(HTTPStatus.NOT_FOUND, f"the Hub stand-in does not serve {method} {path}")
            except _Refusal as refusal:
                headers = {"X-Error-Message": refusal.message}
                if refusal.error_code:
                    headers["X-Error-Code"] = refusal.error_code
                if refusal.commit:
                    headers["X-Repo-Commit"] = refusal.commit
                self.send_json({"error": refusal.message}, refusal.status, headers)

        # Answers ---------------------------------------------------------------------------------------------

        def send_json(self, value, status=HTTPStatus.OK, headers=None):
            self.send_bytes(json.dumps(value).encode(), status, {"Content-Type": "application/json", **(headers or {})})

        def send_bytes(self, data, status=HTTPStatus.OK, headers=None):
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        # Requests --------------------------------------------------------------------------------------------

        def authorized(self) -> bool:
            return self.headers.get("Authorization") == f"Bearer {hub.token}"

        def require_token(self):
            if not self.authorized():
                raise _Refusal(HTTPStatus.UNAUTHORIZED, "a valid token is required to write")

        def visible_repository(self, repo_id) -> Repository:
            repository = hub.repositories.get(repo_id)
            if repository is None or (repository.private and not self.authorized()):
                raise _Refusal(HTTPStatus.NOT_FOUND, f"repository {repo_id} not found", "RepoNotFound")
            return repository

        def revision(self, repository, revision) -> Commit:
            commit = repository.at(revision or "main")
            if commit is None:
                raise _Refusal(HTTPStatus.NOT_FOUND, f"revision {revision} not found", "RevisionNotFound")
            return commit

        def json_body(self):
            return json.loads(self.body or b"{}")

        # Endpoints -------------------------------------------------------------------------------------------

        def whoami(self):
            if not self.authorized():
                raise _Refusal(HTTPStatus.UNAUTHORIZED, "invalid token")
            self.send_json({"type": "user", "name": hub.user, "orgs": [], "auth": {"type": "access_token"}})

        def create_repository(self):
            self.require_token()
            payload = self.json_body()
            if payload.get("type", "model") != "model":
                raise _Refusal(HTTPStatus.BAD_REQUEST, "the Hub stand-in holds model repositories only")
            repo_id = f"{payload.get('organization') or hub.user}/{payload['name']}"
            body = {"url": f"{hub.url}/{repo_id}", "name": repo_id, "id": repo_id}
            if not hub.create(repo_id, payload.get("visibility") == "private" or bool(payload.get("private"))):
                self.send_json({**body, "error": "You already created this model repo"}, HTTPStatus.CONFLICT)
                return
            self.send_json(body)

        def validate_yaml(self):
            content = self.json_body()["content"]
            match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
            try:
                metadata = yaml.safe_load(match.group(1)) if match else {}
            except yaml.YAMLError as error:
                metadata = error
            if not isinstance(metadata, dict):
                message = f"the model card's front matter is not a YAML mapping: {metadata}"
                self.send_json({"errors": [{"message": message}], "warnings": []}, HTTPStatus.BAD_REQUEST)
                return
            self.send_json({"errors": [], "warnings": []})

        def preupload(self, repo, revision):
            self.require_token()
            head = self.revision(self.visible_repository(repo), revision)
            files = [
                {
                    "path": file["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": git_blob_id(head.files[file["path"]]) if file["path"] in head.files else None,
                }
                for file in self.json_body()["files"]
            ]
            self.send_json({"files": files, "commitOid": head.oid})

        def commit(self, repo, revision):
            self.require_token()
            repository = self.visible_repository(repo)
            if revision != "main" or self.query.get("create_pr"):
                raise _Refusal(HTTPStatus.BAD_REQUEST, "the Hub stand-in commits to main only, without pull requests")
            header, additions, deletions = {}, {}, []
            for line in self.body.splitlines():
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    header = value
                elif key == "file":
                    additions[value["path"]] = base64.b64decode(value["content"])
                elif key in ("deletedFile", "deletedFolder"):
                    deletions.append(value["path"])
                else:
                    raise _Refusal(HTTPStatus.BAD_REQUEST, f"the Hub stand-in takes files inline (regular), not {key}")
            commit = hub.commit(repository, header.get("summary", ""), additions, deletions, header.get("parentCommit"))
            self.send_json(
                {
                    "success": True,
                    "commitOid": commit.oid,
                    "commitUrl": f"{hub.url}/{repo}/commit/{commit.oid}",
                    "hookOutput": "",
                    "pullRequestUrl": None,
                }
            )

        def repository_info(self, repo, revision=None):
            repository = self.visible_repository(repo)
            commit = self.revision(repository, revision)
            self.send_json(
                {
                    "id": repo,
                    "modelId": repo,
                    "author": repo.split("/")[0],
                    "sha": commit.oid,
                    "private": repository.private,
                    "disabled": False,
                    "gated": False,
                    "tags": [],
                    "siblings": [{"rfilename": path} for path in sorted(commit.files)],
                }
            )

        def tree(self, repo, revision, path=None):
            """The files and folders in a folder (the root without `path`), or under it with `recursive=true`."""
            commit = self.revision(self.visible_repository(repo), revision)
            recursive = self.query.get("recursive", ["False"])[0].lower() == "true"
            prefix = f"{path.strip('/')}/" if path else ""
            entries = {}
            for name, data in commit.files.items():
                if not name.startswith(prefix):
                    continue
                parts = name[len(prefix) :].split("/")
                if len(parts) == 1 or recursive:
                    entries[name] = _file_entry(name, data)
                for depth in range(len(parts) - 1 if recursive else min(len(parts) - 1, 1)):
                    folder = prefix + "/".join(parts[: depth + 1])
                    entries[folder] = _folder_entry(folder)
            if path and not entries:
                raise _Refusal(HTTPStatus.NOT_FOUND, f"{path} not found", "EntryNotFound", commit.oid)
            self.send_json([entries[name] for name in sorted(entries)])

        def paths_info(self, repo, revision):
            """The entries of the files and folders at the given paths (form field `paths`); missing ones left out."""
            commit = self.revision(self.visible_repository(repo), revision)
            entries = []
            for path in parse_qs(self.body.decode()).get("paths", []):
                path = path.strip("/")
                if path in commit.files:
                    entries.append(_file_entry(path, commit.files[path]))
                elif any(name.startswith(path + "/") for name in commit.files):
                    entries.append(_folder_entry(path))
            self.send_json(entries)

        def resolve(self, repo, revision, path):
            commit = self.revision(self.visible_repository(repo), revision)
            if path not in commit.files:
                raise _Refusal(HTTPStatus.NOT_FOUND, f"{path} not found at {revision}", "EntryNotFound", commit.oid)
            data = commit.files[path]
            headers = {"ETag": f'"{git_blob_id(data)}"', "X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes"}
            start = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
            if start and self.command == "GET":
                self.send_bytes(data[int(start.group(1)) :], HTTPStatus.PARTIAL_CONTENT, headers)
            else:
                self.send_bytes(data, HTTPStatus.OK, headers)

    return Handler
