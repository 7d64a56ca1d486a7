#!/usr/bin/env python3
"""A GitHub Releases API emulator for lifeboat's tests.

The real `gh` CLI is pointed at it with

    GH_HOST=github.localhost GH_TOKEN=<any> GH_CONFIG_DIR=<temp dir>
    HTTP_PROXY=http://127.0.0.1:<port>

For the host `github.localhost` gh speaks plain HTTP to `api.github.localhost`
(and uploads to whatever `upload_url` a release names, here
`uploads.github.localhost`) through the proxy, so every request arrives here
with an absolute URI. The emulator keeps repositories, releases, drafts, tags
and asset bytes (in `--state-dir`), answers the REST calls and the GraphQL
operations gh sends with GitHub's JSON shapes and error bodies, paginates with
`Link` headers, and injects faults.

What was observed while building this (gh 2.23 and 2.102): `GH_TOKEN` is
used for `github.localhost` by both versions (sent as `Authorization: token
...`); `GH_ENTERPRISE_TOKEN` is not needed, and nothing is HTTPS. gh never
exits 4 for `github.localhost` (it behaves as if a blank token existed), so
"no token at all" is tested against the default host, where gh stops before
any request. gh decodes GraphQL answers strictly (an extra field fails the
command), so GraphQL answers carry exactly the selected fields. A HEAD answer
must have no body. gh 2.102 escapes the `/` in `git/refs/tags%2FNAME`. Set
`GH_EMULATOR_VERBOSE=1` to see every request (and its body) on stderr.

Start: `gh_emulator.py --state-dir DIR [--faults JSON]`; the first line on
stdout is `PORT <n>`. Control endpoints (plain requests to 127.0.0.1:<n>):

    GET  /_control/state            repositories, releases, tags (JSON)
    GET  /_control/log              every request line so far
    POST /_control/repo             {"repo": "o/r", "private": true, "empty": false}
    DELETE /_control/repo/o/r       the repository disappears
    POST /_control/release          {"repo", "tag", "draft", "assets": [{"name", "hex" | "data" | "size"}]}
    POST /_control/faults           [rule, ...] (replaces the rules; counters restart)
    POST /_control/settings         {"token_valid": bool, "digests": bool}

A fault rule: {"op": OP, "nth": 1, "times": 1, "action": ACTION, ...} fires
on the nth request of that op (1-based) and the `times - 1` following ones
(`times: 0` = forever). OPs: tag_lookup, release_create, release_update,
release_delete, release_list, release_get, upload, asset_download,
asset_delete, ref_delete, graphql, repo_get, user, any. ACTIONs:
`status` (with "status" and optional "message", "headers"), `reset` (close
the connection without answering), `stall` (answer nothing for "seconds",
default 3600), `truncate` (asset download: send half the bytes then close),
`short` (asset download: a valid response with half the bytes),
`rate_limit` (403 API rate limit), `secondary_rate_limit` (429),
`already_exists` (422 Release.tag_name already exists).
"""

import argparse
import base64
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "http://api.github.localhost"
UPLOADS = "http://uploads.github.localhost"
WEB = "http://github.localhost"
DOCS = "https://docs.github.com/rest"
LOGIN = "lifeboat-tester"


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Reset(Exception):
    """Drop the connection without an answer."""


class State:
    def __init__(self, state_dir):
        self.lock = threading.RLock()
        self.dir = state_dir
        os.makedirs(os.path.join(state_dir, "assets"), exist_ok=True)
        self.repos = {}  # "o/r" -> repo dict
        self.next_id = 1000
        self.faults = []
        self.counters = {}
        self.log = []
        self.token_valid = True
        self.digests = True

    def new_id(self):
        with self.lock:
            self.next_id += 1
            return self.next_id

    def add_repo(self, full, private=True, empty=False):
        with self.lock:
            rid = self.new_id()
            self.repos[full.lower()] = {
                "id": rid,
                "full_name": full,
                "private": private,
                "empty": empty,
                "releases": {},  # id -> release
                "tags": set(),
            }
            return self.repos[full.lower()]

    def repo(self, full):
        return self.repos.get(full.lower())

    def repo_by_id(self, rid):
        for r in self.repos.values():
            if r["id"] == rid:
                return r
        return None

    def asset_path(self, aid):
        return os.path.join(self.dir, "assets", str(aid))


def release_json(repo, rel):
    full = repo["full_name"]
    tag_part = rel["tag_name"] if not rel["draft"] else "untagged-%d" % rel["id"]
    return {
        "url": "%s/repos/%s/releases/%d" % (API, full, rel["id"]),
        "assets_url": "%s/repos/%s/releases/%d/assets" % (API, full, rel["id"]),
        "upload_url": "%s/repos/%s/releases/%d/assets{?name,label}" % (UPLOADS, full, rel["id"]),
        "html_url": "%s/%s/releases/tag/%s" % (WEB, full, tag_part),
        "id": rel["id"],
        "author": user_json(),
        "node_id": "RE_%d" % rel["id"],
        "tag_name": rel["tag_name"],
        "target_commitish": "main",
        "name": rel["name"],
        "draft": rel["draft"],
        "immutable": False,
        "prerelease": rel["prerelease"],
        "created_at": rel["created_at"],
        "updated_at": rel["created_at"],
        "published_at": rel["published_at"],
        "assets": [asset_json(repo, rel, a) for a in rel["assets"]],
        "tarball_url": "%s/repos/%s/tarball/%s" % (API, full, rel["tag_name"]),
        "zipball_url": "%s/repos/%s/zipball/%s" % (API, full, rel["tag_name"]),
        "body": rel["body"],
    }


def asset_json(repo, rel, a):
    j = {
        "url": "%s/repos/%s/releases/assets/%d" % (API, repo["full_name"], a["id"]),
        "id": a["id"],
        "node_id": "RA_%d" % a["id"],
        "name": a["name"],
        "label": a["label"],
        "uploader": user_json(),
        "content_type": a["content_type"],
        "state": "uploaded",
        "size": a["size"],
        "download_count": 0,
        "created_at": a["created_at"],
        "updated_at": a["created_at"],
        "browser_download_url": "%s/%s/releases/download/%s/%s"
        % (WEB, repo["full_name"], rel["tag_name"], urllib.parse.quote(a["name"])),
    }
    if a.get("digest"):
        j["digest"] = a["digest"]
    return j


def user_json():
    return {
        "login": LOGIN,
        "id": 1,
        "node_id": "U_1",
        "type": "User",
        "site_admin": False,
        "url": "%s/users/%s" % (API, LOGIN),
        "html_url": "%s/%s" % (WEB, LOGIN),
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.localhost"
    sys_version = ""

    # -- plumbing ----------------------------------------------------------

    def log_message(self, fmt, *args):
        pass

    @property
    def st(self):
        return self.server.state

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        host = (url.hostname or self.headers.get("Host", "")).split(":")[0]
        self.host = host
        self.query = urllib.parse.parse_qs(url.query)
        self.rawquery = url.query
        self.route = url.path
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.body = self.read_chunked()
        line = "%s %s %s" % (self.command, host, self.path.split(host, 1)[-1] if host else self.path)
        if self.route.startswith("/_control"):
            return self.control()
        op = self.classify()
        with self.st.lock:
            self.st.log.append(line + " op=" + op)
        if os.environ.get("GH_EMULATOR_VERBOSE"):
            sys.stderr.write("%s op=%s body=%r\n" % (line, op, self.body[:300]))
            sys.stderr.flush()
        try:
            if self.inject(op):
                return
            self.dispatch(op)
        except Reset:
            self.reset()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = do_HEAD = handle_any

    def read_chunked(self):
        out = b""
        while True:
            size = int(self.rfile.readline().strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    def reset(self):
        # SO_LINGER 0: the close sends RST, which gh reports as
        # "connection reset by peer" (or EOF), like a dropped network.
        try:
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def send(self, status, obj=None, headers=None, raw=None, ctype="application/json; charset=utf-8"):
        if raw is None:
            raw = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("X-GitHub-Media-Type", "github.v3; format=json")
        self.send_header("X-OAuth-Scopes", "repo, read:org, gist")
        self.send_header("X-RateLimit-Limit", "5000")
        self.send_header("X-RateLimit-Remaining", "4999")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        # A HEAD answer has no body: a body would be read as an unsolicited
        # response on the next request of the keep-alive connection.
        if self.command != "HEAD":
            self.wfile.write(raw)

    def error(self, status, message, errors=None, headers=None):
        obj = {"message": message, "documentation_url": DOCS, "status": str(status)}
        if errors:
            obj["errors"] = errors
        self.send(status, obj, headers)

    def not_found(self):
        self.error(404, "Not Found")

    # -- faults -----------------------------------------------------------

    def inject(self, op):
        if not self.st.token_valid and op != "none":
            self.error(401, "Bad credentials")
            return True
        rule = None
        with self.st.lock:
            # Every rule counts the requests of its op, fired or not, so
            # "nth" always means the nth request of that op.
            for i, r in enumerate(self.st.faults):
                if r.get("op", "any") not in (op, "any"):
                    continue
                n = self.st.counters.get(i, 0) + 1
                self.st.counters[i] = n
                first = r.get("nth", 1)
                times = r.get("times", 1)
                if rule is None and n >= first and (times == 0 or n < first + times):
                    rule = r
                    self.st.log.append("  fault: %s" % json.dumps(r))
        if rule is None:
            return False
        action = rule.get("action", "status")
        if action == "reset":
            raise Reset()
        if action == "stall":
            time.sleep(rule.get("seconds", 3600))
            raise Reset()
        if action == "status":
            status = rule.get("status", 502)
            msg = rule.get("message") or {500: "Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Error")
            self.error(status, msg, headers=rule.get("headers"))
            return True
        if action == "rate_limit":
            self.error(
                403,
                "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
                headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 60)},
            )
            return True
        if action == "secondary_rate_limit":
            self.error(429, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", headers={"Retry-After": "1"})
            return True
        if action == "already_exists":
            self.error(422, "Validation Failed", errors=[{"resource": "Release", "code": "already_exists", "field": "tag_name"}])
            return True
        # truncate / short apply to the asset body: handled in dispatch
        self.pending_action = action
        return False

    # -- routing ----------------------------------------------------------

    ROUTES = [
        ("HEAD|GET", r"/repos/([^/]+/[^/]+)/releases/tags/(.+)", "tag_lookup"),
        ("GET", r"/repos/([^/]+/[^/]+)/releases", "release_list"),
        ("GET", r"/repositories/(\d+)/releases", "release_list"),
        ("POST", r"/repos/([^/]+/[^/]+)/releases", "release_create"),
        ("GET", r"/repos/([^/]+/[^/]+)/releases/(\d+)", "release_get"),
        ("PATCH", r"/repos/([^/]+/[^/]+)/releases/(\d+)", "release_update"),
        ("DELETE", r"/repos/([^/]+/[^/]+)/releases/(\d+)", "release_delete"),
        ("POST", r"/repos/([^/]+/[^/]+)/releases/(\d+)/assets", "upload"),
        ("GET", r"/repos/([^/]+/[^/]+)/releases/(\d+)/assets", "asset_list"),
        ("GET|HEAD", r"/repos/([^/]+/[^/]+)/releases/assets/(\d+)", "asset_download"),
        ("DELETE", r"/repos/([^/]+/[^/]+)/releases/assets/(\d+)", "asset_delete"),
        ("DELETE", r"/repos/([^/]+/[^/]+)/git/refs/tags/(.+)", "ref_delete"),
        ("PUT", r"/repos/([^/]+/[^/]+)/contents/(.+)", "contents_put"),
        ("GET", r"/repos/([^/]+/[^/]+)", "repo_get"),
        ("POST", r"/graphql", "graphql"),
        ("POST", r"/api/graphql", "graphql"),
        ("GET", r"/user", "user"),
        ("GET", r"/users/([^/]+)", "user_get"),
        ("GET", r"/", "meta"),
        ("POST", r"/user/repos", "repo_create"),
        ("POST", r"/orgs/([^/]+)/repos", "repo_create"),
    ]

    def classify(self):
        # gh >= 2.5x escapes the `/` of `tags/NAME` in a ref path.
        path = urllib.parse.unquote(self.route)
        if path.startswith("/api/v3/"):
            path = path[len("/api/v3"):]
        for methods, pattern, op in self.ROUTES:
            if self.command in methods.split("|"):
                m = re.fullmatch(pattern, path)
                if m:
                    self.args = list(m.groups())
                    return op
        self.args = []
        return "unknown"

    def authed(self):
        return self.headers.get("Authorization", "").lower().startswith(("token ", "bearer "))

    def dispatch(self, op):
        if op == "unknown":
            sys.stderr.write("gh_emulator: unhandled %s %s\n" % (self.command, self.path))
            return self.not_found()
        if not self.authed() and op not in ("asset_download",):
            return self.error(401, "Requires authentication")
        return getattr(self, "op_" + op)(*self.args)

    def find_repo(self, full):
        if full.isdigit():
            return self.st.repo_by_id(int(full))
        return self.st.repo(full)

    # -- REST -------------------------------------------------------------

    def op_meta(self):
        self.send(200, {"current_user_url": API + "/user"})

    def op_user(self):
        self.send(200, user_json())

    def op_contents_put(self, full, path):
        # Creating a file makes the first commit: the repository is no
        # longer empty. The content itself is not kept.
        repo = self.find_repo(full)
        if not repo:
            return self.not_found()
        data = json.loads(self.body or b"{}")
        if "message" not in data or "content" not in data:
            return self.error(422, "Invalid request.")
        with self.st.lock:
            created = repo["empty"]
            repo["empty"] = False
        self.send(201 if created else 200, {"content": {"name": path.rsplit("/", 1)[-1], "path": path}, "commit": {"sha": "0" * 40, "message": data["message"]}})

    def op_user_get(self, login):
        # Every owner but the token's user is an organisation.
        if login.lower() == LOGIN:
            return self.send(200, user_json())
        self.send(200, {"login": login, "id": 2, "node_id": "O_2", "type": "Organization"})

    def op_repo_get(self, full):
        repo = self.find_repo(full)
        if not repo:
            return self.not_found()
        self.send(200, repo_rest_json(repo))

    def op_tag_lookup(self, full, tag):
        repo = self.find_repo(full)
        if not repo:
            return self.not_found()
        with self.st.lock:
            for rel in sorted(repo["releases"].values(), key=lambda r: r["id"]):
                if rel["tag_name"] == tag and not rel["draft"]:
                    return self.send(200, release_json(repo, rel))
        self.not_found()

    def op_release_list(self, full):
        repo = self.find_repo(full)
        if not repo:
            return self.not_found()
        per_page = min(int(self.query.get("per_page", ["30"])[0]), 100)
        page = max(int(self.query.get("page", ["1"])[0]), 1)
        with self.st.lock:
            rels = sorted(repo["releases"].values(), key=lambda r: -r["id"])
            items = [release_json(repo, r) for r in rels]
        chunk = items[(page - 1) * per_page : page * per_page]
        last = max((len(items) + per_page - 1) // per_page, 1)
        links = []
        base = "%s/repositories/%d/releases?per_page=%d&page=" % (API, repo["id"], per_page)
        if page > 1:
            links.append('<%s%d>; rel="prev"' % (base, page - 1))
        if page < last:
            links.append('<%s%d>; rel="next"' % (base, page + 1))
            links.append('<%s%d>; rel="last"' % (base, last))
        if page > 1:
            links.append('<%s1>; rel="first"' % base)
        self.send(200, chunk, headers={"Link": ", ".join(links)} if links else None)

    def op_release_get(self, full, rid):
        repo = self.find_repo(full)
        rel = repo and repo["releases"].get(int(rid))
        if not rel:
            return self.not_found()
        self.send(200, release_json(repo, rel))

    def op_release_create(self, full):
        repo = self.find_repo(full)
        if not repo:
            return self.not_found()
        if repo["empty"]:
            return self.error(422, "Repository is empty.")
        try:
            data = json.loads(self.body or b"{}")
        except ValueError:
            return self.error(400, "Problems parsing JSON")
        tag = data.get("tag_name")
        if not tag:
            return self.error(422, "Validation Failed", errors=[{"resource": "Release", "code": "missing_field", "field": "tag_name"}])
        draft = bool(data.get("draft", False))
        with self.st.lock:
            if not draft and any(r["tag_name"] == tag and not r["draft"] for r in repo["releases"].values()):
                return self.error(422, "Validation Failed", errors=[{"resource": "Release", "code": "already_exists", "field": "tag_name"}])
            rel = {
                "id": self.st.new_id(),
                "tag_name": tag,
                "name": data.get("name") or tag,
                "body": data.get("body") or "",
                "draft": draft,
                "prerelease": bool(data.get("prerelease", False)),
                "created_at": now(),
                "published_at": None if draft else now(),
                "assets": [],
            }
            repo["releases"][rel["id"]] = rel
            if not draft:
                repo["tags"].add(tag)
            out = release_json(repo, rel)
        self.send(201, out)

    def op_release_update(self, full, rid):
        repo = self.find_repo(full)
        rel = repo and repo["releases"].get(int(rid))
        if not rel:
            return self.not_found()
        data = json.loads(self.body or b"{}")
        with self.st.lock:
            if "tag_name" in data:
                rel["tag_name"] = data["tag_name"]
            for k in ("name", "body", "prerelease"):
                if k in data:
                    rel[k] = data[k]
            if data.get("draft") is False and rel["draft"]:
                if any(r["tag_name"] == rel["tag_name"] and not r["draft"] for r in repo["releases"].values()):
                    return self.error(422, "Validation Failed", errors=[{"resource": "Release", "code": "already_exists", "field": "tag_name"}])
                rel["draft"] = False
                rel["published_at"] = now()
                repo["tags"].add(rel["tag_name"])
            elif data.get("draft") is True:
                rel["draft"] = True
            out = release_json(repo, rel)
        self.send(200, out)

    def op_release_delete(self, full, rid):
        repo = self.find_repo(full)
        with self.st.lock:
            rel = repo and repo["releases"].pop(int(rid), None)
            if not rel:
                return self.not_found()
            for a in rel["assets"]:
                try:
                    os.unlink(self.st.asset_path(a["id"]))
                except OSError:
                    pass
        self.send(204)

    def op_ref_delete(self, full, tag):
        repo = self.find_repo(full)
        if not repo:
            return self.not_found()
        with self.st.lock:
            if tag not in repo["tags"]:
                return self.error(422, "Reference does not exist")
            repo["tags"].discard(tag)
        self.send(204)

    def op_upload(self, full, rid):
        repo = self.find_repo(full)
        rel = repo and repo["releases"].get(int(rid))
        if not rel:
            return self.not_found()
        name = self.query.get("name", [""])[0]
        with self.st.lock:
            if any(a["name"] == name for a in rel["assets"]):
                return self.error(422, "Validation Failed", errors=[{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}])
            aid = self.st.new_id()
            with open(self.st.asset_path(aid), "wb") as f:
                f.write(self.body)
            a = {
                "id": aid,
                "name": name,
                "label": self.query.get("label", [""])[0],
                "content_type": self.headers.get("Content-Type", "application/octet-stream"),
                "size": len(self.body),
                "created_at": now(),
                "digest": "sha256:" + hashlib.sha256(self.body).hexdigest() if self.st.digests else None,
            }
            rel["assets"].append(a)
            out = asset_json(repo, rel, a)
        self.send(201, out)

    def op_asset_list(self, full, rid):
        repo = self.find_repo(full)
        rel = repo and repo["releases"].get(int(rid))
        if not rel:
            return self.not_found()
        self.send(200, [asset_json(repo, rel, a) for a in rel["assets"]])

    def find_asset(self, repo, aid):
        for rel in repo["releases"].values():
            for a in rel["assets"]:
                if a["id"] == aid:
                    return rel, a
        return None, None

    def op_asset_download(self, full, aid):
        repo = self.find_repo(full)
        rel, a = self.find_asset(repo, int(aid)) if repo else (None, None)
        if not a:
            return self.not_found()
        if "octet-stream" not in self.headers.get("Accept", ""):
            return self.send(200, asset_json(repo, rel, a))
        with open(self.st.asset_path(a["id"]), "rb") as f:
            data = f.read()
        action = getattr(self, "pending_action", None)
        if action == "short":
            return self.send(200, raw=data[: len(data) // 2], ctype="application/octet-stream")
        if action == "truncate":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            raise Reset()
        self.send(200, raw=data, ctype="application/octet-stream")

    def op_asset_delete(self, full, aid):
        repo = self.find_repo(full)
        with self.st.lock:
            rel, a = self.find_asset(repo, int(aid)) if repo else (None, None)
            if not a:
                return self.not_found()
            rel["assets"].remove(a)
        self.send(204)

    def op_repo_create(self, org=None):
        data = json.loads(self.body or b"{}")
        owner = org or LOGIN
        full = "%s/%s" % (owner, data.get("name"))
        with self.st.lock:
            if self.st.repo(full):
                return self.error(422, "Repository creation failed.", errors=[{"resource": "Repository", "code": "custom", "field": "name", "message": "name already exists on this account"}])
            repo = self.st.add_repo(full, private=data.get("private", data.get("visibility") == "private"), empty=not data.get("auto_init"))
        self.send(201, repo_rest_json(repo))

    # -- GraphQL ----------------------------------------------------------

    def op_graphql(self):
        data = json.loads(self.body or b"{}")
        query = data.get("query", "")
        variables = data.get("variables") or {}
        m = re.search(r"(query|mutation)\s+(\w+)", query)
        name = m.group(2) if m else ""
        with self.st.lock:
            self.st.log.append("  graphql: %s %s" % (name, json.dumps(variables)))
        handler = getattr(self, "gql_" + name, None)
        if handler is None:
            sys.stderr.write("gh_emulator: unhandled graphql %s: %s\n" % (name, query))
            return self.send(200, {"errors": [{"message": "emulator: unsupported operation " + name}]})
        handler(query, variables)

    def gql_UserCurrent(self, query, variables):
        self.send_gql({"viewer": {"login": LOGIN, "id": "U_1", "databaseId": 1, "name": "Lifeboat Tester"}}, query)

    def send_gql(self, data, query):
        # gh decodes GraphQL answers strictly: a field it did not ask for
        # fails the command, so answer exactly the selection.
        self.send(200, {"data": project(data, selection(query))})

    def gql_RepositoryReleaseByTag(self, query, variables):
        full = "%s/%s" % (variables.get("owner"), variables.get("name"))
        repo = self.find_repo(full)
        if not repo:
            return self.gql_repo_missing(full)
        tag = variables.get("tagName")
        # GraphQL finds drafts too (that is how gh finds a draft by tag): a
        # published release wins, else the newest draft.
        with self.st.lock:
            rels = [r for r in repo["releases"].values() if r["tag_name"] == tag]
            rels.sort(key=lambda r: (not r["draft"], r["id"]))
            rel = rels[-1] if rels else None
        node = None
        if rel:
            node = {"databaseId": rel["id"], "id": "RE_%d" % rel["id"], "isDraft": rel["draft"],
                    "tagName": rel["tag_name"], "name": rel["name"], "isImmutable": False,
                    "isPrerelease": rel["prerelease"]}
        self.send_gql({"repository": {"release": node}}, query)

    def gql_repo_missing(self, full):
        self.send(200, {
            "data": {"repository": None},
            "errors": [{
                "type": "NOT_FOUND",
                "path": ["repository"],
                "locations": [{"line": 1, "column": 1}],
                "message": "Could not resolve to a Repository with the name '%s'." % full,
            }],
        })

    def gql_RepositoryInfo(self, query, variables):
        full = "%s/%s" % (variables.get("owner"), variables.get("name"))
        repo = self.find_repo(full)
        if not repo:
            return self.gql_repo_missing(full)
        self.send_gql({"repository": repo_gql_json(repo)}, query)

    gql_RepositoryNetwork = gql_RepositoryInfo

    # -- control ----------------------------------------------------------

    def control(self):
        st = self.st
        path = self.route[len("/_control"):]
        data = json.loads(self.body or b"null") if self.body else None
        with st.lock:
            if self.command == "GET" and path == "/state":
                out = {}
                for full, repo in st.repos.items():
                    out[repo["full_name"]] = {
                        "private": repo["private"],
                        "empty": repo["empty"],
                        "tags": sorted(repo["tags"]),
                        "releases": [release_json(repo, r) for r in sorted(repo["releases"].values(), key=lambda r: r["id"])],
                    }
                return self.send(200, out)
            if self.command == "GET" and path == "/log":
                return self.send(200, raw=("\n".join(st.log) + "\n").encode(), ctype="text/plain")
            if self.command == "POST" and path == "/repo":
                repo = st.repo(data["repo"]) or st.add_repo(data["repo"])
                repo["private"] = data.get("private", True)
                repo["empty"] = data.get("empty", False)
                return self.send(200, {"ok": True})
            if self.command == "DELETE" and path.startswith("/repo/"):
                st.repos.pop(path[len("/repo/"):].lower(), None)
                return self.send(200, {"ok": True})
            if self.command == "POST" and path == "/release":
                repo = st.repo(data["repo"])
                draft = data.get("draft", False)
                rel = {
                    "id": st.new_id(),
                    "tag_name": data["tag"],
                    "name": data.get("name", data["tag"]),
                    "body": data.get("body", ""),
                    "draft": draft,
                    "prerelease": False,
                    "created_at": now(),
                    "published_at": None if draft else now(),
                    "assets": [],
                }
                for spec in data.get("assets", []):
                    if "hex" in spec:
                        raw = bytes.fromhex(spec["hex"])
                    elif "data" in spec:
                        raw = base64.b64decode(spec["data"])
                    else:
                        raw = b"x" * spec.get("size", 0)
                    aid = st.new_id()
                    with open(st.asset_path(aid), "wb") as f:
                        f.write(raw)
                    rel["assets"].append({
                        "id": aid,
                        "name": spec["name"],
                        "label": "",
                        "content_type": "application/octet-stream",
                        "size": len(raw),
                        "created_at": now(),
                        "digest": ("sha256:" + hashlib.sha256(raw).hexdigest()) if spec.get("digest", st.digests) else None,
                    })
                repo["releases"][rel["id"]] = rel
                if not draft:
                    repo["tags"].add(data["tag"])
                return self.send(200, {"id": rel["id"]})
            if self.command == "POST" and path == "/faults":
                st.faults = list(data or [])
                st.counters = {}
                return self.send(200, {"ok": True})
            if self.command == "POST" and path == "/settings":
                st.token_valid = data.get("token_valid", st.token_valid)
                st.digests = data.get("digests", st.digests)
                return self.send(200, {"ok": True})
        self.send(404, {"message": "unknown control endpoint"})


def selection(query):
    """The field tree of a GraphQL query: {name: subtree or None}."""
    tokens = re.findall(r"\.\.\.|[A-Za-z_][A-Za-z0-9_]*|[{}():,$!\[\]\"]|\S", query)
    pos = 0

    def skip_parens():
        nonlocal pos
        depth = 0
        while pos < len(tokens):
            t = tokens[pos]
            pos += 1
            if t == "(":
                depth += 1
            elif t == ")":
                depth -= 1
                if depth == 0:
                    return

    def block():
        nonlocal pos
        fields = {}
        while pos < len(tokens) and tokens[pos] != "}":
            t = tokens[pos]
            pos += 1
            if t in (",",):
                continue
            if t == "...":
                pos += 2  # `on Type`
                if pos < len(tokens) and tokens[pos] == "{":
                    pos += 1
                    fields.update(block())
                continue
            name = t
            if pos < len(tokens) and tokens[pos] == ":":
                pos += 1
                name = tokens[pos]
                pos += 1
            if pos < len(tokens) and tokens[pos] == "(":
                skip_parens()
            sub = None
            if pos < len(tokens) and tokens[pos] == "{":
                pos += 1
                sub = block()
            fields[name] = sub
        pos += 1
        return fields

    while pos < len(tokens) and tokens[pos] != "{":
        if tokens[pos] == "(":
            skip_parens()
        else:
            pos += 1
    pos += 1
    return block()


def project(data, fields):
    if fields is None or data is None:
        return data
    if isinstance(data, list):
        return [project(d, fields) for d in data]
    return {k: project(data.get(k), sub) for k, sub in fields.items()}


def repo_rest_json(repo):
    owner, name = repo["full_name"].split("/", 1)
    return {
        "id": repo["id"],
        "node_id": "R_%d" % repo["id"],
        "name": name,
        "full_name": repo["full_name"],
        "owner": {"login": owner, "id": 1, "type": "User"},
        "private": repo["private"],
        "visibility": "private" if repo["private"] else "public",
        "html_url": "%s/%s" % (WEB, repo["full_name"]),
        "url": "%s/repos/%s" % (API, repo["full_name"]),
        "clone_url": "%s/%s.git" % (WEB, repo["full_name"]),
        "default_branch": "main",
        "size": 0 if repo["empty"] else 1,
        "permissions": {"admin": True, "push": True, "pull": True},
    }


def repo_gql_json(repo):
    owner, name = repo["full_name"].split("/", 1)
    return {
        "id": "R_%d" % repo["id"],
        "name": name,
        "nameWithOwner": repo["full_name"],
        "owner": {"id": "U_1", "login": owner},
        "isPrivate": repo["private"],
        "visibility": "PRIVATE" if repo["private"] else "PUBLIC",
        "isEmpty": repo["empty"],
        "isArchived": False,
        "isFork": False,
        "url": "%s/%s" % (WEB, repo["full_name"]),
        "sshUrl": "git@github.localhost:%s.git" % repo["full_name"],
        "defaultBranchRef": None if repo["empty"] else {"name": "main"},
        "viewerPermission": "ADMIN",
        "hasIssuesEnabled": True,
        "parent": None,
    }


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Clients that go away (gh killed on a stall, resets we injected)
        # are expected here; anything else is a bug worth a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, BrokenPipeError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--faults", default="[]")
    ap.add_argument("--repo", action="append", default=[], help="o/r repositories that exist at start")
    args = ap.parse_args()
    state = State(args.state_dir)
    state.faults = json.loads(args.faults)
    for full in args.repo:
        state.add_repo(full)
    server = Server(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = state
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
