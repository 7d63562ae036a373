//! Container endpoints: Docker's create body as the engine's request, the
//! list and inspect shapes clients read, and the lifecycle verbs.

use serde_json::{json, Map, Value};

use super::http::{Conn, Request, MAX_JSON_BODY};
use super::server::Stream;
use super::{bad_request, empty, engine_error, error, json_body, reply, BadRequest, Handled};
use crate::container::{cgroup::Resources, ContainerRecord};
use crate::engine::containers::{ContainerSummary, ListRequest, RemoveRequest};
use crate::engine::filters::Filters;
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

/// Docker's create body (`Config` fields at the top, `HostConfig`,
/// `NetworkingConfig`) as the engine's request. Fields burrow has no
/// counterpart for are refused only when they would change what runs.
pub fn request(body: &Value, name: Option<String>) -> Result<ContainerRequest, BadRequest> {
    let image = string(&body["Image"]).ok_or(BadRequest::Missing("Config.Image is required"))?;
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
    req.labels = super::string_map(&body["Labels"], "Labels")?;
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
    for (path, opts) in super::string_map(&hc["Tmpfs"], "HostConfig.Tmpfs")? {
        req.tmpfs.push(if opts.is_empty() {
            path
        } else {
            format!("{path}:{opts}")
        });
    }
    // Anonymous volumes the image does not declare (`docker run -v /data`).
    if let Some(vols) = body["Volumes"].as_object() {
        for path in vols.keys() {
            // A bind or volume at that path already (`SRC:DST[:MODE]`).
            let covered = req.volumes.iter().any(|v| {
                let parts: Vec<&str> = v.split(':').collect();
                parts.get(1).unwrap_or(&parts[0]) == path
            });
            if !covered {
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
    req.log_opt = super::string_map(&lc["Config"], "HostConfig.LogConfig.Config")?
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    req.resources = resources(hc);
    // Clients send null for the fields they leave unset (docker-py does).
    req.healthcheck = match &body["Healthcheck"] {
        Value::Null => None,
        v => {
            let ns = |k: &str| v[k].as_i64().unwrap_or(0);
            Some(crate::image::config::Healthcheck {
                test: strings(&v["Test"]),
                interval: ns("Interval"),
                timeout: ns("Timeout"),
                start_period: ns("StartPeriod"),
                start_interval: ns("StartInterval"),
                retries: ns("Retries"),
            })
        }
    };
    Ok(req)
}

fn mount_string(m: &Value) -> Result<String, BadRequest> {
    let kind = m["Type"].as_str().unwrap_or("volume");
    let target = m["Target"]
        .as_str()
        .ok_or(BadRequest::Missing("a mount needs a Target"))?;
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
        Err(e) => return bad_request(&mut conn.stream, &e),
    };
    let name = req
        .param("name")
        .filter(|n| !n.is_empty())
        .map(|n| n.trim_start_matches('/').to_string());
    let creq = match request(&body, name) {
        Ok(r) => r,
        Err(e) => return bad_request(&mut conn.stream, &e),
    };
    let mut sink = engine::Collect::default();
    match engine::create::create(engine, &creq, &mut sink) {
        Ok(rec) => {
            let warnings: Vec<String> = sink
                .0
                .into_iter()
                .filter_map(|e| match e {
                    engine::Event::Warning(w) => Some(w),
                    engine::Event::Notice { name, reason, line } => {
                        engine::first_time(&engine.store.paths.runtime, name, &reason)
                            .then_some(line)
                    }
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
    engine::containers::find(engine, key.trim_start_matches('/'))
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
    let mut v = match engine::containers::inspect_record(engine, rec.clone()) {
        Ok(v) => v,
        Err(_) => serde_json::to_value(&rec).unwrap_or_default(),
    };
    let state = engine::containers::state_word(rec.live_status(&engine.store));
    v["Name"] = format!("/{}", rec.name).into();
    v["State"]["Status"] = state.into();
    v["State"]["Dead"] = false.into();
    v["Platform"] = "linux".into();
    v["Config"]["ExposedPorts"] = set_map(&v["Config"]["ExposedPorts"]);
    v["Config"]["AttachStdin"] = false.into();
    v["Config"]["AttachStdout"] = (!rec.config.open_stdin).into();
    v["Config"]["AttachStderr"] = (!rec.config.open_stdin).into();
    v["Config"]["StdinOnce"] = false.into();
    v["Config"]["Volumes"] = Value::Null;
    let mounts = mounts_json(&rec);
    v["Mounts"] = mounts;
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
    v["HostConfig"]["NetworkMode"] = network_mode(&rec).into();
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
    let networks = networks_json(&rec);
    let first_ip = networks
        .values()
        .find_map(|e| e["IPAddress"].as_str().filter(|s| !s.is_empty()))
        .unwrap_or("")
        .to_string();
    ns["Networks"] = Value::Object(networks);
    ns["IPAddress"] = first_ip.into();
    ns["Gateway"] = rec.network_settings.gateway.clone().into();
    ns["IPPrefixLen"] = rec.network_settings.ip_prefix_len.into();
    ns["Bridge"] = "".into();
    ns["SandboxID"] = "".into();
    ns["SandboxKey"] = "".into();
    v
}

/// `NetworkSettings.Networks`, for inspect and the list alike: one entry
/// named as `HostConfig.NetworkMode` says (clients look it up by that
/// name), with the short id among its aliases (compose checks for it).
pub fn networks_json(rec: &ContainerRecord) -> Map<String, Value> {
    let short = rec.id[..12].to_string();
    let mut networks = Map::new();
    match rec.host_config.network_mode.as_str() {
        "host" | "none" | "private" | "pasta" | "slirp4netns" => {
            let mut e = endpoint(&[], &short);
            // On the keeper's bridge: its address, gateway and prefix.
            if let Some(ep) = rec.network_settings.networks.get("bridge") {
                e["IPAddress"] = ep.ip_address.clone().into();
                e["Gateway"] = ep.gateway.clone().into();
                e["IPPrefixLen"] = ep.ip_prefix_len.into();
            }
            networks.insert(network_mode(rec).to_string(), e);
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
    networks
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

/// Docker's `filters` query as the engine's filters.
pub fn filters(req: &Request) -> Result<Filters, engine::Error> {
    Filters::from_json(req.param("filters").unwrap_or(""))
}

/// `GET /containers/json`.
pub fn list(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let lreq = match filters(req) {
        Ok(filters) => ListRequest {
            all: req.flag("all", false),
            filters,
            last: req
                .param("limit")
                .and_then(|l| l.parse::<usize>().ok())
                .filter(|&n| n > 0),
            size: req.flag("size", false),
        },
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    match engine::containers::list(engine, &lreq) {
        Ok(list) => {
            let out: Vec<Value> = list.iter().map(summary).collect();
            reply(&mut conn.stream, 200, &Value::Array(out))
        }
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// The network mode as Docker names it: a container's own network
/// namespace with outbound access is Docker's default `bridge`.
pub fn network_mode(rec: &ContainerRecord) -> &str {
    match rec.host_config.network_mode.as_str() {
        "private" | "pasta" | "slirp4netns" => "bridge",
        other => other,
    }
}

/// A container's mounts as Docker lists them (inspect's `Mounts`).
pub fn mounts_json(rec: &ContainerRecord) -> Value {
    rec.host_config
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
        .collect()
}

/// A list entry of `GET /containers/json`.
fn summary(c: &ContainerSummary) -> Value {
    let ports: Vec<Value> = c
        .ports
        .iter()
        .map(|p| {
            let mut v = json!({"PrivatePort": p.private_port, "Type": p.kind});
            if let Some(ip) = &p.ip {
                v["IP"] = ip.clone().into();
            }
            if let Some(pp) = p.public_port {
                v["PublicPort"] = pp.into();
            }
            v
        })
        .collect();
    let mut v = record_summary(&c.record, c.state);
    v["Ports"] = Value::Array(ports);
    v["Status"] = c.status.clone().into();
    if let Some(size) = &c.size {
        v["SizeRw"] = size.rw.into();
        v["SizeRootFs"] = size.root_fs.into();
    }
    v
}

/// The fields of a list entry a record gives by itself (`system/df` lists
/// containers too).
pub fn record_summary(rec: &ContainerRecord, state: &str) -> Value {
    let created = humantime::parse_rfc3339_weak(&rec.created)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
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
        "Ports": [],
        "Labels": rec.config.labels,
        "State": state,
        "Status": "",
        "HostConfig": {"NetworkMode": network_mode(rec)},
        "NetworkSettings": {"Networks": networks_json(rec)},
        "Mounts": mounts_json(rec),
    })
}

/// `POST /containers/{id}/start`: 204, or 304 when it runs already.
pub fn start(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, MAX_JSON_BODY);
    let rec = match find(engine, id) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    if rec.is_up(&engine.store) {
        return empty(&mut conn.stream, 304);
    }
    done(conn, engine::attach::start(engine, &rec))
}

/// 204, or the engine's error.
fn done(conn: &mut Conn<Stream>, r: Result<(), engine::Error>) -> Handled {
    match r {
        Ok(()) => empty(&mut conn.stream, 204),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `t=` seconds before the kill (the engine's default when not given).
fn timeout(req: &Request) -> Option<u64> {
    req.param("t")
        .or_else(|| req.param("timeout"))
        .and_then(|t| t.parse::<i64>().ok())
        .map(|t| t.max(0) as u64)
}

/// `POST /containers/{id}/stop?t=`: 204, or 304 when it was not running.
pub fn stop(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, MAX_JSON_BODY);
    let rec = match find(engine, id) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    if !rec.is_up(&engine.store) && !rec.is_restarting(&engine.store) {
        return empty(&mut conn.stream, 304);
    }
    done(
        conn,
        engine::containers::stop(engine, &rec.id, timeout(req)),
    )
}

/// `POST /containers/{id}/restart?t=`.
pub fn restart(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, MAX_JSON_BODY);
    let r = find(engine, id).and_then(|rec| {
        engine::containers::stop(engine, &rec.id, timeout(req))?;
        engine::attach::start(engine, &find(engine, &rec.id)?)
    });
    done(conn, r)
}

/// `POST /containers/{id}/kill?signal=`.
pub fn kill(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, MAX_JSON_BODY);
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
    let sig = req.param("signal").filter(|s| !s.is_empty());
    done(conn, engine::containers::kill(engine, &rec.id, sig))
}

/// `POST /containers/{id}/pause` and `unpause`.
pub fn pause(
    engine: &Engine,
    conn: &mut Conn<Stream>,
    req: &Request,
    id: &str,
    on: bool,
) -> Handled {
    let _ = conn.read_body(req, MAX_JSON_BODY);
    let id = id.trim_start_matches('/');
    let r = if on {
        engine::containers::pause(engine, id)
    } else {
        engine::containers::unpause(engine, id)
    };
    done(conn, r)
}

/// `POST /containers/{id}/rename?name=`.
pub fn rename(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, MAX_JSON_BODY);
    let Some(new) = req.param("name").filter(|n| !n.is_empty()) else {
        return error(&mut conn.stream, 400, "rename needs a name");
    };
    let r = engine::containers::rename(
        engine,
        id.trim_start_matches('/'),
        new.trim_start_matches('/'),
    );
    done(conn, r)
}

/// `DELETE /containers/{id}?force=&v=`.
pub fn remove(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, MAX_JSON_BODY);
    let rreq = RemoveRequest {
        force: req.flag("force", false),
        volumes: req.flag("v", false),
    };
    done(
        conn,
        engine::containers::remove(engine, id.trim_start_matches('/'), &rreq),
    )
}

/// `POST /containers/prune`: stopped containers go.
pub fn prune(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let _ = conn.read_body(req, MAX_JSON_BODY);
    match filters(req).and_then(|f| engine::containers::prune(engine, &f)) {
        Ok(p) => reply(
            &mut conn.stream,
            200,
            &json!({"ContainersDeleted": p.deleted, "SpaceReclaimed": p.space}),
        ),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}
