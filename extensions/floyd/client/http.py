"""FloydClient: typed calls to the bridge's REST API over one keep-alive session.

requests is imported when the first call needs it: GETs of JSON go through :mod:`floyd.client.quick`
where they can, so a command that only reads (``floyd status``) starts without it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from floyd._version import __version__
from floyd.client.config import ClientConfig, load_config
from floyd.client.errors import ConnectionFailed, FloydAPIError, NotLoggedIn
from floyd.client.quick import NotQuick, quick_json, usable

if TYPE_CHECKING:
    import requests

    from floyd.client.manifest import LocalManifest

# entries per page of a file listing (the bridge allows up to 10,000)
FILE_PAGE = 5000


def _q(value: str) -> str:
    return quote(str(value), safe="")


def _endpoint(owner: str, name: str) -> str:
    return f"endpoints/{_q(owner)}/{_q(name)}"


def _version(owner: str, name: str, number: int) -> str:
    return f"{_endpoint(owner, name)}/versions/{int(number)}"


class FloydClient:
    def __init__(self, url: str, token: str, timeout: float = 120) -> None:
        if not url:
            raise NotLoggedIn("No platform URL configured: run `floyd login URL` (e.g. floyd login http://127.0.0.1:8000).")
        self.url = url.rstrip("/") + "/"
        self.api = self.url + "services/floyd/api/v1/"
        self.token = token
        self.timeout = timeout
        self.headers = {"User-Agent": f"floyd-client/{__version__}"}
        if token:
            self.headers["Authorization"] = f"token {token}"
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        """The keep-alive session, made (and requests imported) on the first call that needs it."""
        if self._session is None:
            import requests

            self._session = requests.Session()
            self._session.headers.update(self.headers)
        return self._session

    @classmethod
    def from_config(cls, cfg: ClientConfig | None = None) -> FloydClient:
        cfg = cfg or load_config()
        if not cfg.token:
            raise NotLoggedIn("Not logged in: run `floyd login URL` (inside a workspace this is automatic).")
        return cls(cfg.url, cfg.token)

    # -- transport ---------------------------------------------------------------------
    def request(self, method: str, path: str, *, stream: bool = False,
                timeout: float | tuple[float, float | None] | None = None,
                **kwargs: Any) -> requests.Response:
        import requests

        url = path if path.startswith("http") else self.api + path.lstrip("/")
        try:
            resp = self.session.request(method, url, stream=stream, timeout=timeout or self.timeout, **kwargs)
        except requests.ConnectionError as exc:
            msg = f"Cannot reach the platform at {self.url}: is it running (make up) and is the URL right?"
            raise ConnectionFailed(msg) from exc
        except requests.Timeout as exc:
            raise ConnectionFailed(f"The platform at {self.url} did not answer in time; try again.") from exc
        if resp.status_code >= 400:
            raise api_error(resp)
        return resp

    def get_json(self, endpoint: str, /, **params: Any) -> Any:
        params = {k: v for k, v in params.items() if v not in (None, False, "")}
        return self.send_json("GET", endpoint, None, **params)

    def send_json(self, method: str, path: str, body: dict | None = None, /, **params: Any) -> Any:
        """A JSON request and its decoded answer (None when empty): over the standard library while
        no session is open and the URL allows it (``quick.py``), through requests otherwise."""
        url = self.api + path.lstrip("/")
        if self._session is None and usable(url):
            query = {k: v for k, v in params.items() if v is not None}
            try:
                return quick_json(method, url + (f"?{urlencode(query)}" if query else ""), self.headers,
                                  self.timeout, self.url, body)
            except NotQuick:
                pass  # a redirect: requests follows it
        resp = self.request(method, path, json=body, params=params or None)
        return resp.json() if resp.content else None

    # -- identity ----------------------------------------------------------------------
    def whoami(self) -> dict:
        return self.get_json("user")

    @staticmethod
    def request_token(url: str, username: str, password: str, note: str = "floyd CLI") -> str:
        """Trade a user name and password for a JupyterHub API token (the Hub's own API)."""
        import requests

        api = url.rstrip("/") + f"/hub/api/users/{_q(username)}/tokens"
        try:
            resp = requests.post(api, json={"auth": {"username": username, "password": password}, "note": note},
                                 timeout=60)
        except requests.RequestException as exc:
            raise ConnectionFailed(f"Cannot reach JupyterHub at {url}: is it running and is the URL right?") from exc
        if resp.status_code == 403:
            raise FloydAPIError(403, "Wrong user name or password, or the account is not approved yet.")
        if resp.status_code >= 400:
            raise api_error(resp)
        return resp.json()["token"]

    # -- projects ----------------------------------------------------------------------
    def projects(self, owner: str | None = None) -> list[dict]:
        return self.get_json("projects", owner=owner)["items"]

    def nodes(self) -> dict:
        """Admins: {runtime, items}: the machines jobs run on."""
        return dict(self.get_json("nodes"))

    def set_node_availability(self, name: str, availability: str) -> dict:
        return dict(self.send_json("PATCH", f"nodes/{_q(name)}", {"availability": availability}))

    def create_project(self, name: str, description: str = "") -> dict:
        return self.send_json("POST", "projects", {"name": name, "description": description})

    def project(self, owner: str, name: str) -> dict:
        return self.get_json(f"projects/{_q(owner)}/{_q(name)}")

    def delete_project(self, owner: str, name: str) -> None:
        self.request("DELETE", f"projects/{_q(owner)}/{_q(name)}")

    # -- datasets ----------------------------------------------------------------------
    def datasets(self, owner: str | None = None, public: bool = False) -> list[dict]:
        return self.get_json("datasets", owner=owner, public="1" if public else None)["items"]

    def create_dataset(self, name: str, description: str = "", public: bool = False) -> dict:
        return self.send_json("POST", "datasets", {"name": name, "description": description, "public": public})

    def dataset(self, owner: str, name: str) -> dict:
        return self.get_json(f"datasets/{_q(owner)}/{_q(name)}")

    def update_dataset(self, owner: str, name: str, **changes: Any) -> dict:
        return self.send_json("PATCH", f"datasets/{_q(owner)}/{_q(name)}", changes)

    def delete_dataset(self, owner: str, name: str) -> None:
        self.request("DELETE", f"datasets/{_q(owner)}/{_q(name)}")

    def versions(self, owner: str, name: str) -> list[dict]:
        return self.get_json(f"datasets/{_q(owner)}/{_q(name)}/versions")["items"]

    def version(self, owner: str, name: str, version: str | int = "latest") -> dict:
        return self.get_json(f"datasets/{_q(owner)}/{_q(name)}/versions/{_q(str(version))}")

    def delete_version(self, owner: str, name: str, version: str | int, force: bool = False) -> dict:
        resp = self.request("DELETE", f"datasets/{_q(owner)}/{_q(name)}/versions/{_q(str(version))}",
                            params={"force": "1"} if force else None)
        return resp.json() if resp.content else {}

    def files(self, owner: str, name: str, version: str | int, path: str = "", recursive: bool = False,
              after: str = "", limit: int | None = None) -> dict:
        """One page of a version's listing: ``next`` is the ``after`` of the page that follows."""
        return self.get_json(f"datasets/{_q(owner)}/{_q(name)}/versions/{_q(str(version))}/files",
                             path=path or None, recursive="1" if recursive else None, after=after or None,
                             limit=limit)

    def file_pages(self, owner: str, name: str, version: str | int, path: str = "", recursive: bool = False,
                   limit: int | None = None) -> Iterator[dict]:
        """Every page of a listing, fetched when asked for, so only one is held at a time.

        The version is pinned by the number the first page names: pages of "latest" stay one
        version even if another is committed meanwhile."""
        limit = limit or FILE_PAGE
        page = self.files(owner, name, version, path, recursive, limit=limit)
        yield page
        while page.get("next"):
            page = self.files(owner, name, page["version"]["number"], path, recursive, page["next"], limit)
            yield page

    def download(self, owner: str, name: str, version: str | int, path: str = "") -> requests.Response:
        return self.request("GET", f"datasets/{_q(owner)}/{_q(name)}/versions/{_q(str(version))}/download",
                            params={"path": path} if path else None, stream=True)

    def diff(self, owner: str, name: str, a: str | int, b: str | int) -> dict:
        return self.get_json(f"datasets/{_q(owner)}/{_q(name)}/diff", **{"from": str(a), "to": str(b)})

    # -- uploads -----------------------------------------------------------------------
    def start_upload(self, owner: str, name: str, manifest: LocalManifest | Iterable[dict], message: str = "",
                     allow_duplicate: bool = False, base: Mapping[str, Any] | None = None) -> dict:
        return self.send_manifest(f"datasets/{_q(owner)}/{_q(name)}/uploads", manifest,
                                  {"message": message, "allow_duplicate": allow_duplicate}, base)

    def send_manifest(self, path: str, manifest: LocalManifest | Iterable[dict], fields: dict,
                      base: Mapping[str, Any] | None = None) -> dict:
        """POST ``{**fields, "manifest": [...]}`` formatted while sent, or only ``base["directories"]``."""
        from floyd.client.manifest import directories_body, manifest_body

        data = manifest_body(manifest, fields) if base is None else directories_body(manifest, base, fields)
        return self.request("POST", path, data=data, headers={"Content-Type": "application/json"}).json()

    def check_head(self, owner: str, name: str, version_id: str) -> dict:
        """``{"duplicate_of": version}`` when the dataset has a version with this id; a 404 otherwise
        (a bridge from before this request answers 400: it wants a manifest)."""
        return self.send_json("POST", f"datasets/{_q(owner)}/{_q(name)}/uploads", {"version_id": version_id})

    def upload_status(self, upload_id: str) -> dict:
        return self.get_json(f"uploads/{_q(upload_id)}")

    def send_pack(self, upload_id: str, body: Iterable[bytes]) -> dict:
        return self.request("POST", f"uploads/{_q(upload_id)}/pack", data=iter(body),
                            headers={"Content-Type": "application/x-tar"}, timeout=3600).json()

    def blob_offset(self, upload_id: str, hash_value: str) -> int:
        resp = self.request("HEAD", f"uploads/{_q(upload_id)}/blobs/{_q(hash_value)}")
        return int(resp.headers.get("Upload-Offset", "0"))

    def put_blob(self, upload_id: str, hash_value: str, offset: int, length: int, body: Iterator[bytes]) -> dict:
        headers = {"Upload-Offset": str(offset), "Content-Type": "application/octet-stream"}
        return self.request("PUT", f"uploads/{_q(upload_id)}/blobs/{_q(hash_value)}", data=SizedBody(body, length),
                            headers=headers, timeout=3600).json()

    def commit_upload(self, upload_id: str) -> dict:
        return self.request("POST", f"uploads/{_q(upload_id)}/commit", timeout=3600).json()

    def abort_upload(self, upload_id: str) -> None:
        self.request("DELETE", f"uploads/{_q(upload_id)}")

    # -- code snapshots and jobs -----------------------------------------------------------
    def start_snapshot(self, owner: str, project: str, manifest: LocalManifest | Iterable[dict],
                       message: str = "") -> dict:
        """Like start_upload, for a project's code: the same pack/blob/commit calls follow."""
        return self.send_manifest(f"projects/{_q(owner)}/{_q(project)}/snapshots", manifest, {"message": message})

    def download_snapshot(self, owner: str, project: str, snapshot: str) -> requests.Response:
        return self.request("GET", f"projects/{_q(owner)}/{_q(project)}/snapshots/{_q(snapshot)}/download",
                            stream=True)

    def submit_job(self, spec: dict) -> dict:
        return self.send_json("POST", "jobs", spec)

    def jobs(self, project: str | None = None, group: int | None = None, state: str | None = None,
             limit: int = 200) -> list[dict]:
        return self.get_json("jobs", project=project, group=group, state=state, limit=limit)["items"]

    def job(self, owner: str, project: str, number: int | str) -> dict:
        return self.get_json(f"jobs/{_q(owner)}/{_q(project)}/{_q(str(number))}")

    def stop_job(self, owner: str, project: str, number: int | str) -> dict:
        return self.send_json("POST", f"jobs/{_q(owner)}/{_q(project)}/{_q(str(number))}/stop")

    def restart_job(self, owner: str, project: str, number: int | str, overrides: dict | None = None) -> dict:
        return self.send_json("POST", f"jobs/{_q(owner)}/{_q(project)}/{_q(str(number))}/restart", overrides or {})

    def job_metrics(self, owner: str, project: str, number: int | str) -> dict:
        return self.get_json(f"jobs/{_q(owner)}/{_q(project)}/{_q(str(number))}/metrics")

    def lineage(self, ref: str, depth: int | None = None) -> dict:
        """The lineage graph of REF: {root, nodes: [{kind, ref, label, state, url}], edges: [{from, to}]}."""
        return self.get_json("lineage", ref=ref, depth=depth)

    def compare(self, jobs: list[str] | None = None, group: int | None = None, rank: str | None = None,
                order: str = "min") -> dict:
        return self.get_json("compare", jobs=",".join(jobs) if jobs else None, group=group, rank=rank,
                             order=order if rank else None)

    def job_packages(self, owner: str, project: str, number: int | str) -> list[str]:
        return self.get_json(f"jobs/{_q(owner)}/{_q(project)}/{_q(str(number))}/packages")["items"]

    def job_log(self, owner: str, project: str, number: int | str) -> str:
        return self.request("GET", f"jobs/{_q(owner)}/{_q(project)}/{_q(str(number))}/logs").text

    def follow_job_log(self, owner: str, project: str, number: int | str) -> Iterator[tuple[str, str]]:
        """(event, data) pairs from the live log: ('line', text) for every line from the start,
        then ('end', '{"state": ...}') when the job has ended."""
        return self._follow(f"jobs/{_q(owner)}/{_q(project)}/{_q(str(number))}/logs")

    def job_output_files(self, owner: str, project: str, number: int | str, path: str = "",
                         recursive: bool = False) -> list[dict]:
        return self.get_json(f"jobs/{_q(owner)}/{_q(project)}/{_q(str(number))}/output/files",
                             path=path or None, recursive="1" if recursive else None)["files"]

    def download_job_output(self, owner: str, project: str, number: int | str, path: str = "") -> requests.Response:
        return self.request("GET", f"jobs/{_q(owner)}/{_q(project)}/{_q(str(number))}/output/download",
                            params={"path": path} if path else None, stream=True)

    def dataset_from_job(self, owner: str, name: str, job: str, message: str = "") -> dict:
        return self.send_json("POST", f"datasets/{_q(owner)}/{_q(name)}/from-job", {"job": job, "message": message})


    # -- endpoints ---------------------------------------------------------------------
    def endpoints(self) -> list[dict]:
        return self.get_json("endpoints")["items"]

    def create_endpoint(self, name: str, public: bool = False, owner: str | None = None) -> dict:
        """Endpoint NAME of the caller, or of OWNER (admins)."""
        body: dict[str, Any] = {"name": name, "public": public}
        if owner is not None:
            body["owner"] = owner
        return self.send_json("POST", "endpoints", body)

    def schedules(self) -> list[dict]:
        return self.get_json("schedules")["items"]

    def create_schedule(self, body: dict) -> dict:
        return self.send_json("POST", "schedules", body)

    def open_tensorboard(self, jobs: list[str]) -> dict:
        """Start (or find) the platform's TensorBoard over these jobs' outputs; waits until it answers."""
        return self.send_json("POST", "tensorboards", {"jobs": jobs})

    def check_schedule(self, body: dict) -> dict:
        """The bridge's checks of a new schedule's name, cron and time zone; nothing is stored."""
        return self.send_json("POST", "schedules", {**body, "check_only": True})

    def schedule(self, owner: str, name: str) -> dict:
        return self.get_json(f"schedules/{_q(owner)}/{_q(name)}")

    def update_schedule(self, owner: str, name: str, **changes: Any) -> dict:
        return self.send_json("PATCH", f"schedules/{_q(owner)}/{_q(name)}", changes)

    def delete_schedule(self, owner: str, name: str) -> None:
        self.request("DELETE", f"schedules/{_q(owner)}/{_q(name)}")

    def get_endpoint(self, owner: str, name: str) -> dict:
        return self.get_json(_endpoint(owner, name))

    def update_endpoint(self, owner: str, name: str, **changes: Any) -> dict:
        return self.send_json("PATCH", _endpoint(owner, name), changes)

    def set_traffic(self, owner: str, name: str, split: dict[str, int]) -> dict:
        """Split unpinned traffic ({"3": 10, "2": 90}; {} ends the split)."""
        return self.send_json("PUT", f"{_endpoint(owner, name)}/traffic", {"split": split})

    def promote_version(self, owner: str, name: str, version: str) -> dict:
        return self.send_json("POST", f"{_endpoint(owner, name)}/promote", {"version": version})

    def rollback_version(self, owner: str, name: str, version: str | None = None) -> dict:
        return self.send_json("POST", f"{_endpoint(owner, name)}/rollback", {"version": version} if version else {})

    def delete_endpoint(self, owner: str, name: str) -> None:
        self.request("DELETE", _endpoint(owner, name))

    def endpoint_metrics(self, owner: str, name: str, minutes: float = 60) -> dict:
        return self.get_json(f"{_endpoint(owner, name)}/metrics", minutes=minutes)

    def list_versions(self, owner: str, name: str) -> list[dict]:
        return self.get_json(f"{_endpoint(owner, name)}/versions")["items"]

    def deploy_version(self, owner: str, name: str, body: dict) -> dict:
        return self.send_json("POST", f"{_endpoint(owner, name)}/versions", body)

    def get_version(self, owner: str, name: str, number: int) -> dict:
        return self.get_json(_version(owner, name, number))

    def stop_version(self, owner: str, name: str, number: int) -> dict:
        return self.send_json("POST", f"{_version(owner, name, number)}/stop")

    def version_log(self, owner: str, name: str, number: int) -> str:
        return self.request("GET", f"{_version(owner, name, number)}/logs").text

    def follow_version_log(self, owner: str, name: str, number: int) -> Iterator[tuple[str, str]]:
        """(event, data) pairs of a version's live log, as follow_job_log gives a job's."""
        return self._follow(f"{_version(owner, name, number)}/logs")

    def list_keys(self, owner: str, name: str) -> list[dict]:
        return self.get_json(f"{_endpoint(owner, name)}/keys")["items"]

    def create_key(self, owner: str, name: str, key_name: str | None = None,
                   expires_in_days: float | None = None) -> dict:
        body = {k: v for k, v in (("name", key_name), ("expires_in_days", expires_in_days)) if v is not None}
        return self.send_json("POST", f"{_endpoint(owner, name)}/keys", body)

    def revoke_key(self, owner: str, name: str, key_id: str) -> dict:
        return self.send_json("DELETE", f"{_endpoint(owner, name)}/keys/{_q(key_id)}")

    # -- live logs ---------------------------------------------------------------------
    def _follow(self, path: str) -> Iterator[tuple[str, str]]:
        """A generator, so the request goes out when the first pair is asked for."""
        resp = self.request("GET", path, params={"follow": "1"}, stream=True,
                            timeout=(30, None))  # no read limit: a log stream may be silent for hours
        yield from read_events(resp)


def _arrivals(resp: requests.Response) -> Iterator[bytes]:
    """The body as it arrives: one piece per HTTP chunk (a server's flush), never waiting for
    more bytes than were sent. Not ``iter_lines(chunk_size=1)``: a byte per read costs a
    follower more CPU than a busy job's log (5,000 lines/s) leaves it, and its lines fall behind."""
    raw = resp.raw
    if getattr(raw, "chunked", False) and hasattr(raw, "read_chunked"):
        yield from raw.read_chunked(decode_content=True)
        return
    read = getattr(raw, "read1", None)  # urllib3 2: what is there, up to the size
    while chunk := (read(1 << 16) if read is not None else raw.read(1)):
        yield chunk


def read_events(resp: requests.Response) -> Iterator[tuple[str, str]]:
    """The (event, data) pairs of a server-sent-events response, up to and including 'end'."""
    event, data = "line", list[str]()
    pending = b""
    for chunk in _arrivals(resp):
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            raw = line.decode("utf-8", "replace").rstrip("\r")
            if raw == "":
                if data:
                    yield event, "\n".join(data)
                    if event == "end":
                        return
                event, data = "line", []
            elif raw.startswith("data: ") or raw == "data:":
                data.append(raw[6:])
            elif raw.startswith("event: "):
                event = raw[7:]


class SizedBody:
    """An iterator of chunks with a known length, so requests sends Content-Length, not chunked."""

    def __init__(self, chunks: Iterator[bytes], length: int) -> None:
        self.chunks = chunks
        self.length = length

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def __len__(self) -> int:
        return self.length


def api_error(resp: requests.Response) -> FloydAPIError:
    try:
        body = resp.json()
        message = body.get("message") or resp.reason
    except ValueError:
        message = f"{resp.status_code} {resp.reason} from {resp.url}"
    return FloydAPIError(resp.status_code, message)
