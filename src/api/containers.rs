//! Container endpoints: Docker's create body as the engine's request, the
//! list and inspect shapes clients read, and the lifecycle verbs.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::http::{Conn, Request};
use super::server::Stream;
use super::{empty, engine_error, error, json_body, reply, Handled};
use crate::container::{self, cgroup::Resources, ContainerRecord};
use crate::engine::{self, create::ContainerRequest, images::PullPolicy, Engine};

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Value::String(s) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn string(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Docker's create body (`Config` fields at the top, `HostConfig`,
/// `NetworkingConfig`) as the engine's request. Fields burrow has no
/// counterpart for are refused only when they would change what runs.
pub fn request(body: &Value, name: Option<String>) -> Result<ContainerRequest, String> {
    let image = string(&body["Image"]).ok_or("Config.Image is required")?;
    let mut req = ContainerRequest::new(image);
    req.name = name;
    // The API never pulls at create: clients pull on a 404 themselves.
    req.pull = PullPolicy::Never;
    req.cmd = strings(&body["Cmd"]);
    req.entrypoint = match &body["Entrypoint"] {
        Value::Null => None,
        v => Some(strings(v)),
    };
    req.env = strings(&body["Env"]);
    req.workdir = string(&body["WorkingDir"]);
    req.user = string(&body["User"]);
    req.hostname = string(&body["Hostname"]);
    req.labels = string_map(&body["Labels"]);
    req.tty = body["Tty"].as_bool().unwrap_or(false);
    req.interactive = body["OpenStdin"].as_bool().unwrap_or(false);
    let hc = &body["HostConfig"];
    req.auto_remove = hc["AutoRemove"].as_bool().unwrap_or(false);
    req.privileged = hc["Privileged"].as_bool().unwrap_or(false);
    req.read_only = hc["ReadonlyRootfs"].as_bool().unwrap_or(false);
    req.init = hc["Init"].as_bool().unwrap_or(false);
    req.cap_add = strings(&hc["CapAdd"]);
    req.cap_drop = strings(&hc["CapDrop"]);
    req.security_opt = strings(&hc["SecurityOpt"]);
    req.dns = strings(&hc["Dns"]);
    req.add_host = strings(&hc["ExtraHosts"]);
    req.volumes = strings(&hc["Binds"]);
    req.userns = string(&hc["UsernsMode"]);
    if let Some(mounts) = hc["Mounts"].as_array() {
        for m in mounts {
            req.mounts.push(mount_string(m)?);
        }
    }
    for (path, opts) in string_map(&hc["Tmpfs"]) {
        req.tmpfs.push(if opts.is_empty() {
            path
        } else {
            format!("{path}:{opts}")
        });
    }
    // Anonymous volumes the image does not declare (`docker run -v /data`).
    if let Some(vols) = body["Volumes"].as_object() {
        for path in vols.keys() {
            if !req
                .volumes
                .iter()
                .any(|v| v == path || v.ends_with(&format!(":{path}")))
            {
                req.volumes.push(path.clone());
            }
        }
    }
    if let Some(ports) = hc["PortBindings"].as_object() {
        for (port, binds) in ports {
            for b in binds.as_array().into_iter().flatten() {
                let ip = b["HostIp"].as_str().unwrap_or("");
                let host = b["HostPort"].as_str().unwrap_or("");
                req.publish.push(match (ip, host) {
                    ("", "") => port.clone(),
                    ("", h) => format!("{h}:{port}"),
                    (i, h) if i.contains(':') => format!("[{i}]:{h}:{port}"),
                    (i, h) => format!("{i}:{h}:{port}"),
                });
            }
        }
    }
    req.publish_all = hc["PublishAllPorts"].as_bool().unwrap_or(false);
    req.network = match hc["NetworkMode"].as_str().unwrap_or("") {
        "" | "default" | "bridge" => "private".into(),
        other => other.to_string(),
    };
    if let Some(eps) = body["NetworkingConfig"]["EndpointsConfig"].as_object() {
        if let Some((net, ep)) = eps.iter().next() {
            if req.network == "private" && !matches!(net.as_str(), "bridge" | "default") {
                req.network = net.clone();
            }
            if eps.len() == 1 {
                req.network_aliases = strings(&ep["Aliases"]);
            }
        }
    }
    let rp = &hc["RestartPolicy"];
    req.restart = match (
        rp["Name"].as_str().unwrap_or(""),
        rp["MaximumRetryCount"].as_u64(),
    ) {
        ("", _) => "no".into(),
        ("on-failure", Some(n)) if n > 0 => format!("on-failure:{n}"),
        (name, _) => name.to_string(),
    };
    let lc = &hc["LogConfig"];
    req.log_driver = string(&lc["Type"]);
    req.log_opt = string_map(&lc["Config"])
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    req.resources = resources(hc);
    Ok(req)
}

fn mount_string(m: &Value) -> Result<String, String> {
    let kind = m["Type"].as_str().unwrap_or("volume");
    let target = m["Target"].as_str().ok_or("a mount needs a Target")?;
    let mut s = format!("type={kind},target={target}");
    if let Some(src) = m["Source"].as_str().filter(|s| !s.is_empty()) {
        s.push_str(&format!(",source={src}"));
    }
    if m["ReadOnly"].as_bool() == Some(true) {
        s.push_str(",readonly");
    }
    if let Some(size) = m["TmpfsOptions"]["SizeBytes"].as_u64() {
        s.push_str(&format!(",tmpfs-size={size}"));
    }
    if m["VolumeOptions"]["NoCopy"].as_bool() == Some(true) {
        s.push_str(",volume-nocopy");
    }
    Ok(s)
}

fn resources(hc: &Value) -> Resources {
    let int = |k: &str| hc[k].as_i64().unwrap_or(0);
    let mut r = Resources {
        memory: int("Memory"),
        memory_swap: int("MemorySwap"),
        nano_cpus: int("NanoCpus"),
        cpu_shares: int("CpuShares"),
        cpuset_cpus: hc["CpusetCpus"].as_str().unwrap_or("").to_string(),
        pids_limit: hc["PidsLimit"].as_i64().filter(|&p| p > 0),
        blkio_weight: hc["BlkioWeight"].as_u64().unwrap_or(0).min(1000) as u16,
        ..Resources::default()
    };
    // CpuQuota/CpuPeriod as `--cpus` (what `docker run --cpu-quota` means).
    let (quota, period) = (int("CpuQuota"), int("CpuPeriod"));
    if r.nano_cpus == 0 && quota > 0 {
        let period = if period > 0 { period } else { 100_000 };
        r.nano_cpus = quota * 1_000_000_000 / period;
    }
    r
}

/// `POST /containers/create?name=`.
pub fn create(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let body = match json_body(conn, req) {
        Ok(b) => b,
        Err(e) => return error(&mut conn.stream, 400, &e),
    };
    let name = req
        .param("name")
        .filter(|n| !n.is_empty())
        .map(|n| n.trim_start_matches('/').to_string());
    let creq = match request(&body, name) {
        Ok(r) => r,
        Err(e) => return error(&mut conn.stream, 400, &e),
    };
    let mut sink = engine::Collect::default();
    match engine::create::create(engine, &creq, &mut sink) {
        Ok(rec) => {
            let warnings: Vec<String> = sink
                .0
                .into_iter()
                .filter_map(|e| match e {
                    engine::Event::Warning(w) => Some(w),
                    engine::Event::Notice { line, .. } => Some(line),
                    _ => None,
                })
                .collect();
            reply(
                &mut conn.stream,
                201,
                &json!({"Id": rec.id, "Warnings": warnings}),
            )
        }
        Err(engine::Error::Pull {
            not_found: true, ..
        }) => error(
            &mut conn.stream,
            404,
            &format!("No such image: {}", creq.image),
        ),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// Find a container by id, id prefix or name (with or without Docker's `/`).
pub fn find(engine: &Engine, key: &str) -> Result<ContainerRecord, engine::Error> {
    let key = key.trim_start_matches('/');
    container::find(&engine.store, key).map_err(|e| match e {
        container::ContainerError::NoSuch(_) => {
            engine::Error::NotFound(format!("No such container: {key}"))
        }
        e => e.into(),
    })
}

/// The state word Docker uses.
pub fn state_word(rec: &ContainerRecord, engine: &Engine) -> &'static str {
    if rec.state.restarting || rec.is_restarting(&engine.store) {
        "restarting"
    } else if rec.state.paused {
        "paused"
    } else if rec.state.running {
        "running"
    } else if rec.state.started_at.starts_with("0001") || rec.state.started_at.is_empty() {
        "created"
    } else {
        "exited"
    }
}

/// `ExposedPorts` and friends as maps of empty objects, as Docker writes
/// them.
fn set_map(v: &Value) -> Value {
    match v {
        Value::Array(a) => Value::Object(
            a.iter()
                .filter_map(|x| x.as_str())
                .map(|k| (k.to_string(), json!({})))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A container as `GET /containers/{id}/json` answers: the record in
/// Docker's shape, with what clients read filled in (ports with `null` for
/// exposed but unpublished ones, a network entry with the short id among
/// its aliases, `Mounts` in Docker's form).
pub fn inspect_value(engine: &Engine, rec: ContainerRecord) -> Value {
    let rec = rec.with_live_state(&engine.store);
    let dir = engine.store.container_dir(&rec.id);
    let short = rec.id[..12].to_string();
    let state = state_word(&rec, engine);
    let mut v = serde_json::to_value(&rec).unwrap_or_default();
    v["Name"] = format!("/{}", rec.name).into();
    v["State"]["Status"] = state.into();
    v["State"]["Dead"] = false.into();
    v["Driver"] = "overlay".into();
    v["Platform"] = "linux".into();
    v["ResolvConfPath"] = dir.join("resolv.conf").to_string_lossy().into();
    v["HostnamePath"] = dir.join("hostname").to_string_lossy().into();
    v["HostsPath"] = dir.join("hosts").to_string_lossy().into();
    v["LogPath"] = dir.join(container::LOG_FILE).to_string_lossy().into();
    v["Config"]["ExposedPorts"] = set_map(&v["Config"]["ExposedPorts"]);
    v["Config"]["AttachStdin"] = false.into();
    v["Config"]["AttachStdout"] = (!rec.config.open_stdin).into();
    v["Config"]["AttachStderr"] = (!rec.config.open_stdin).into();
    v["Config"]["StdinOnce"] = false.into();
    v["Config"]["Volumes"] = Value::Null;
    let mounts: Vec<Value> = rec
        .host_config
        .mounts
        .iter()
        .map(|m| {
            json!({
                "Type": m.kind,
                "Name": m.name,
                "Source": m.source,
                "Destination": m.destination,
                "Driver": if m.kind == "volume" { "local" } else { "" },
                "Mode": if m.rw { "" } else { "ro" },
                "RW": m.rw,
                "Propagation": if m.kind == "bind" { "rprivate" } else { "" },
            })
        })
        .collect();
    v["Mounts"] = Value::Array(mounts);
    v["HostConfig"]["Binds"] = Value::Array(
        rec.host_config
            .mounts
            .iter()
            .filter(|m| m.kind == "bind")
            .map(|m| {
                format!(
                    "{}:{}{}",
                    m.source,
                    m.destination,
                    if m.rw { "" } else { ":ro" }
                )
                .into()
            })
            .collect(),
    );
    v["HostConfig"]["Mounts"] = Value::Array(Vec::new());
    v["HostConfig"]["NetworkMode"] = match rec.host_config.network_mode.as_str() {
        "private" | "pasta" | "slirp4netns" => "bridge".into(),
        other => other.into(),
    };
    // Ports: every exposed or published port, null when not published.
    let mut ports = Map::new();
    for p in &rec.config.exposed_ports {
        ports.insert(p.clone(), Value::Null);
    }
    if rec.state.running {
        for (p, b) in &rec.network_settings.ports {
            ports.insert(p.clone(), serde_json::to_value(b).unwrap_or_default());
        }
    }
    let ns = &mut v["NetworkSettings"];
    ns["Ports"] = Value::Object(ports);
    let mut networks = Map::new();
    match rec.host_config.network_mode.as_str() {
        "host" | "none" => {
            networks.insert(rec.host_config.network_mode.clone(), endpoint(&[], &short));
        }
        "private" | "pasta" | "slirp4netns" => {
            networks.insert("bridge".into(), endpoint(&[], &short));
        }
        _ => {
            for (name, ep) in &rec.network_settings.networks {
                let mut e = serde_json::to_value(ep).unwrap_or_default();
                let mut aliases = ep.aliases.clone();
                if !aliases.contains(&short) {
                    aliases.push(short.clone());
                }
                e["Aliases"] = json!(aliases);
                networks.insert(name.clone(), e);
            }
        }
    }
    let first_ip = networks
        .values()
        .find_map(|e| e["IPAddress"].as_str().filter(|s| !s.is_empty()))
        .unwrap_or("")
        .to_string();
    ns["Networks"] = Value::Object(networks);
    ns["IPAddress"] = first_ip.into();
    ns["Gateway"] = "".into();
    ns["Bridge"] = "".into();
    ns["SandboxID"] = "".into();
    ns["SandboxKey"] = "".into();
    v
}

fn endpoint(aliases: &[String], short: &str) -> Value {
    let mut a = aliases.to_vec();
    a.push(short.to_string());
    json!({
        "Aliases": a,
        "NetworkID": "",
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "MacAddress": "",
    })
}

/// `GET /containers/{id}/json`.
pub fn inspect(engine: &Engine, conn: &mut Conn<Stream>, id: &str) -> Handled {
    match find(engine, id) {
        Ok(rec) => reply(&mut conn.stream, 200, &inspect_value(engine, rec)),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `GET /containers/json`.
pub fn list(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let all = req.flag("all", false);
    let filters = match req.param("filters").map(parse_filters).transpose() {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => return error(&mut conn.stream, 400, &e),
    };
    let records = match container::list(&engine.store) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e.into()),
    };
    let mut out = Vec::new();
    for rec in records {
        let rec = rec.with_live_state(&engine.store);
        let state = state_word(&rec, engine);
        if !all
            && !filters.contains_key("status")
            && state != "running"
            && state != "paused"
            && state != "restarting"
        {
            continue;
        }
        if !matches_filters(&filters, &rec, state) {
            continue;
        }
        out.push(summary(&rec, state));
    }
    out.sort_by(|a, b| b["Created"].as_i64().cmp(&a["Created"].as_i64()));
    if let Some(n) = req
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        out.truncate(n);
    }
    reply(&mut conn.stream, 200, &Value::Array(out))
}

/// Docker's `filters` query: `{"label":["a=b"]}`, or the older
/// `{"label":{"a=b":true}}`.
pub fn parse_filters(s: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    if s.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let v: Value = serde_json::from_str(s).map_err(|e| format!("invalid filters: {e}"))?;
    let obj = v.as_object().ok_or("invalid filters: not an object")?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let vals = match v {
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            Value::Object(m) => m.keys().cloned().collect(),
            Value::String(s) => vec![s.clone()],
            _ => return Err(format!("invalid filter {k:?}")),
        };
        out.insert(k.clone(), vals);
    }
    Ok(out)
}

fn matches_filters(f: &BTreeMap<String, Vec<String>>, rec: &ContainerRecord, state: &str) -> bool {
    f.iter().all(|(k, vals)| match k.as_str() {
        // Every label filter must hold.
        "label" => vals.iter().all(|want| match want.split_once('=') {
            Some((k, v)) => rec.config.labels.get(k).is_some_and(|x| x == v),
            None => rec.config.labels.contains_key(want.as_str()),
        }),
        "status" => vals.iter().any(|s| s == state),
        "id" => vals.iter().any(|p| rec.id.starts_with(p.as_str())),
        "name" => vals
            .iter()
            .any(|n| rec.name.contains(n.trim_start_matches('/'))),
        "ancestor" => vals
            .iter()
            .any(|a| rec.config.image == *a || rec.image.contains(a.trim_start_matches("sha256:"))),
        "exited" => vals
            .iter()
            .any(|c| state == "exited" && c.parse() == Ok(rec.state.exit_code)),
        _ => true,
    })
}

pub fn summary(rec: &ContainerRecord, state: &str) -> Value {
    let created = chrono_seconds(&rec.created);
    let mut ports = Vec::new();
    for (p, binds) in &rec.network_settings.ports {
        let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
        for b in binds {
            ports.push(json!({
                "IP": if b.host_ip.is_empty() { "0.0.0.0" } else { &b.host_ip },
                "PrivatePort": num.parse::<u16>().unwrap_or(0),
                "PublicPort": b.host_port.parse::<u16>().unwrap_or(0),
                "Type": proto,
            }));
        }
    }
    let mut command = rec.path.clone();
    for a in &rec.args {
        command.push(' ');
        command.push_str(a);
    }
    json!({
        "Id": rec.id,
        "Names": [format!("/{}", rec.name)],
        "Image": rec.config.image,
        "ImageID": rec.image,
        "Command": command,
        "Created": created,
        "Ports": ports,
        "Labels": rec.config.labels,
        "State": state,
        "Status": status_text(rec, state),
        "HostConfig": {"NetworkMode": rec.host_config.network_mode},
        "NetworkSettings": {"Networks": {}},
        "Mounts": [],
    })
}

fn chrono_seconds(rfc3339: &str) -> i64 {
    humantime::parse_rfc3339_weak(rfc3339)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

fn status_text(rec: &ContainerRecord, state: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let ago = |t: &str| {
        crate::util::human::duration(std::time::Duration::from_secs(
            (now - chrono_seconds(t)).max(0) as u64,
        ))
    };
    match state {
        "running" => format!("Up {}", ago(&rec.state.started_at)),
        "paused" => format!("Up {} (Paused)", ago(&rec.state.started_at)),
        "restarting" => format!(
            "Restarting ({}) {} ago",
            rec.state.exit_code,
            ago(&rec.state.finished_at)
        ),
        "exited" => format!(
            "Exited ({}) {} ago",
            rec.state.exit_code,
            ago(&rec.state.finished_at)
        ),
        _ => "Created".into(),
    }
}

/// `POST /containers/{id}/start`: 204, or 304 when it runs already.
pub fn start(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, super::http::MAX_JSON_BODY);
    let rec = match find(engine, id) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    if rec.is_up(&engine.store) {
        return empty(&mut conn.stream, 304);
    }
    match super::attach::start(engine, &rec) {
        Ok(()) => empty(&mut conn.stream, 204),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `t=` seconds before the kill; Docker's 10 by default.
fn timeout(req: &Request) -> std::time::Duration {
    let secs = req
        .param("t")
        .or_else(|| req.param("timeout"))
        .and_then(|t| t.parse::<i64>().ok())
        .map_or(10, |t| t.max(0) as u64);
    std::time::Duration::from_secs(secs)
}

/// `POST /containers/{id}/stop?t=`: 204, or 304 when it was not running.
pub fn stop(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, super::http::MAX_JSON_BODY);
    let rec = match find(engine, id) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    if !rec.is_up(&engine.store) && !rec.is_restarting(&engine.store) {
        return empty(&mut conn.stream, 304);
    }
    match container::lifecycle::stop(&engine.store, &rec, timeout(req), None) {
        Ok(_) => empty(&mut conn.stream, 204),
        Err(e) => engine_error(&mut conn.stream, &e.into()),
    }
}

/// `POST /containers/{id}/restart?t=`.
pub fn restart(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, super::http::MAX_JSON_BODY);
    let rec = match find(engine, id) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    if rec.is_up(&engine.store) {
        if let Err(e) = container::lifecycle::stop(&engine.store, &rec, timeout(req), None) {
            return engine_error(&mut conn.stream, &e.into());
        }
    }
    let rec = match find(engine, id) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    match super::attach::start(engine, &rec) {
        Ok(()) => empty(&mut conn.stream, 204),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `POST /containers/{id}/kill?signal=`.
pub fn kill(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, super::http::MAX_JSON_BODY);
    let rec = match find(engine, id) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    if !rec.is_up(&engine.store) {
        return error(
            &mut conn.stream,
            409,
            &format!("Container {} is not running", rec.id),
        );
    }
    let sig = match req.param("signal").filter(|s| !s.is_empty()) {
        None => nix::sys::signal::Signal::SIGKILL,
        Some(s) => match crate::util::signal::parse_signal(s) {
            Ok(sig) => sig,
            Err(e) => return error(&mut conn.stream, 400, &e),
        },
    };
    match container::lifecycle::signal(&engine.store, &rec, sig) {
        Ok(()) => empty(&mut conn.stream, 204),
        Err(e) => engine_error(&mut conn.stream, &e.into()),
    }
}

/// `POST /containers/{id}/pause` and `unpause`.
pub fn pause(
    engine: &Engine,
    conn: &mut Conn<Stream>,
    req: &Request,
    id: &str,
    on: bool,
) -> Handled {
    let _ = conn.read_body(req, super::http::MAX_JSON_BODY);
    let mut rec = match find(engine, id) {
        Ok(r) => r.with_live_state(&engine.store),
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    let r = if on {
        container::lifecycle::pause(&engine.store, &mut rec)
    } else {
        container::lifecycle::unpause(&engine.store, &mut rec)
    };
    match r {
        Ok(()) => empty(&mut conn.stream, 204),
        Err(e) => engine_error(&mut conn.stream, &e.into()),
    }
}

/// `POST /containers/{id}/rename?name=`.
pub fn rename(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, super::http::MAX_JSON_BODY);
    let rec = match find(engine, id) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    let Some(new) = req.param("name").filter(|n| !n.is_empty()) else {
        return error(&mut conn.stream, 400, "rename needs a name");
    };
    match container::lifecycle::rename(&engine.store, &rec, new.trim_start_matches('/')) {
        Ok(()) => empty(&mut conn.stream, 204),
        Err(e) => engine_error(&mut conn.stream, &e.into()),
    }
}

/// `DELETE /containers/{id}?force=&v=`.
pub fn remove(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, super::http::MAX_JSON_BODY);
    let rec = match find(engine, id) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    let force = req.flag("force", false);
    let volumes = req.flag("v", false);
    match container::remove(&engine.store, &rec, &engine.mapping, force) {
        Ok(_) => {
            if volumes {
                let _ = container::remove_anonymous_volumes(&engine.store, &engine.mapping, &rec);
            }
            empty(&mut conn.stream, 204)
        }
        Err(e) => engine_error(&mut conn.stream, &e.into()),
    }
}

/// `POST /containers/prune`: stopped containers go.
pub fn prune(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let _ = conn.read_body(req, super::http::MAX_JSON_BODY);
    let filters = match req.param("filters").map(parse_filters).transpose() {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => return error(&mut conn.stream, 400, &e),
    };
    let mut deleted = Vec::new();
    for rec in container::list(&engine.store).unwrap_or_default() {
        let rec = rec.with_live_state(&engine.store);
        let state = state_word(&rec, engine);
        if matches!(state, "running" | "paused" | "restarting")
            || !matches_filters(&filters, &rec, state)
        {
            continue;
        }
        if container::remove(&engine.store, &rec, &engine.mapping, false).is_ok() {
            deleted.push(rec.id);
        }
    }
    reply(
        &mut conn.stream,
        200,
        &json!({"ContainersDeleted": deleted, "SpaceReclaimed": 0}),
    )
}
