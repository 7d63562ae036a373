//! What containers and the store use: `GET /containers/{id}/top`,
//! `GET /containers/{id}/stats` (one record, or one a second while the
//! client stays) and `GET /system/df`, in Docker's shapes.

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::http::{self, Chunked, Conn, Request};
use super::server::Stream;
use super::{engine_error, reply, Handled, Next};
use crate::engine::containers::{self, StatsReading};
use crate::engine::system::{self, DfImage};
use crate::engine::Engine;

/// `GET /containers/{id}/top?ps_args=`: `{"Titles", "Processes"}`.
pub fn top(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let args: Vec<String> = req
        .param("ps_args")
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    match containers::top(engine, id.trim_start_matches('/'), &args) {
        Ok(t) => reply(
            &mut conn.stream,
            200,
            &json!({ "Titles": t.titles, "Processes": t.processes }),
        ),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// RFC 3339 with nanoseconds, as Go writes times; Go's zero time for none.
fn time_text(t: Option<SystemTime>) -> String {
    match t {
        Some(t) => humantime::format_rfc3339_nanos(t).to_string(),
        None => "0001-01-01T00:00:00Z".into(),
    }
}

fn cpu_json(r: &StatsReading) -> Value {
    json!({
        "cpu_usage": {
            "total_usage": r.cpu_usage_ns.unwrap_or(0),
            "usage_in_kernelmode": 0,
            "usage_in_usermode": 0,
        },
        "system_cpu_usage": r.system_cpu_ns.unwrap_or(0),
        "online_cpus": r.online_cpus,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

fn networks_json(r: &StatsReading) -> Value {
    Value::Object(
        r.networks
            .iter()
            .map(|n| {
                (
                    n.interface.clone(),
                    json!({
                        "rx_bytes": n.rx_bytes,
                        "rx_packets": n.rx_packets,
                        "rx_errors": n.rx_errors,
                        "rx_dropped": n.rx_dropped,
                        "tx_bytes": n.tx_bytes,
                        "tx_packets": n.tx_packets,
                        "tx_errors": n.tx_errors,
                        "tx_dropped": n.tx_dropped,
                    }),
                )
            })
            .collect(),
    )
}

/// One of Docker's stats records: `now`, with the CPU counters of `before`
/// as `precpu_stats` (the client's CPU % is the difference).
pub fn stats_json(
    name: &str,
    id: &str,
    now: &StatsReading,
    before: Option<&StatsReading>,
) -> Value {
    let blkio = match now.block_io {
        Some((read, write)) => json!([
            {"major": 0, "minor": 0, "op": "read", "value": read},
            {"major": 0, "minor": 0, "op": "write", "value": write},
        ]),
        None => json!([]),
    };
    let empty = StatsReading::default();
    let pre = before.unwrap_or(&empty);
    json!({
        "name": format!("/{name}"),
        "id": id,
        "read": time_text(now.read),
        "preread": time_text(pre.read),
        "pids_stats": {"current": now.pids},
        "blkio_stats": {
            "io_service_bytes_recursive": blkio,
            "io_serviced_recursive": null,
            "io_queue_recursive": null,
            "io_service_time_recursive": null,
            "io_wait_time_recursive": null,
            "io_merged_recursive": null,
            "io_time_recursive": null,
            "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(now),
        "precpu_stats": cpu_json(pre),
        // What Docker shows is usage less the inactive page cache: the
        // reading has taken it off already, so no `stats` to take it again.
        "memory_stats": {
            "usage": now.memory,
            "limit": now.memory_limit,
            "stats": {},
        },
        "networks": networks_json(now),
    })
}

/// `GET /containers/{id}/stats?stream=&one-shot=`: without `stream`, one
/// record (a second after a first reading, so the CPU share means
/// something, unless `one-shot`); with it, one a second until the client
/// leaves or the container stops.
pub fn stats(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let rec = match containers::find(engine, id.trim_start_matches('/')) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    let stream = req.flag("stream", true);
    let mut before = containers::reading(engine, &rec);
    if !stream {
        let v = if req.flag("one-shot", false) || !before.up {
            stats_json(&rec.name, &rec.id, &before, None)
        } else {
            std::thread::sleep(Duration::from_secs(1));
            let now = containers::reading(engine, &rec);
            stats_json(&rec.name, &rec.id, &now, Some(&before))
        };
        return reply(&mut conn.stream, 200, &v);
    }
    let mut s = Chunked::start(&mut conn.stream, 200, "application/json")?;
    s.json(&stats_json(&rec.name, &rec.id, &before, None))?;
    while before.up {
        std::thread::sleep(Duration::from_secs(1));
        let now = containers::reading(engine, &rec);
        s.json(&stats_json(&rec.name, &rec.id, &now, Some(&before)))?;
        before = now;
    }
    s.finish()?;
    Ok(Next::Continue)
}

fn df_image(i: &DfImage) -> Value {
    let mut v = super::images::summary_json(&i.summary);
    v["Size"] = i.size.into();
    v["VirtualSize"] = i.size.into();
    v["SharedSize"] = i.shared.into();
    v["Containers"] = i.containers.into();
    v
}

/// `GET /system/df`: what images, containers, volumes and the build cache
/// take.
pub fn df(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let df = match system::df(engine) {
        Ok(d) => d,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    reply(&mut conn.stream, 200, &df_json(&df))
}

/// Docker's disk-usage object.
pub fn df_json(df: &system::Df) -> Value {
    let images: Vec<Value> = df.images.iter().map(df_image).collect();
    let containers: Vec<Value> = df
        .containers
        .iter()
        .map(|c| {
            let state = if c.running { "running" } else { "exited" };
            let mut v = super::containers::record_summary(&c.record, state);
            v["Status"] = c.status.clone().into();
            v["SizeRw"] = c.size.into();
            v["SizeRootFs"] = c.size.into();
            // The CLI counts a container's local volumes from its mounts.
            v["Mounts"] = super::containers::mounts_json(&c.record);
            v
        })
        .collect();
    let volumes: Vec<Value> = df
        .volumes
        .iter()
        .map(|v| {
            let mut j = serde_json::to_value(&v.volume).unwrap_or_default();
            j["UsageData"] = json!({ "Size": v.size, "RefCount": v.links });
            j
        })
        .collect();
    let cache: Vec<Value> = df
        .build_cache
        .iter()
        .map(|i| {
            json!({
                "ID": i.summary.id,
                "Parent": "",
                "Type": "regular",
                "Description": "a build step's image",
                "InUse": i.containers > 0,
                "Shared": i.shared > 0,
                "Size": i.size,
                "CreatedAt": i.summary.created,
                "LastUsedAt": null,
                "UsageCount": 0,
            })
        })
        .collect();
    json!({
        "LayersSize": df.images_total.size,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": cache,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_record_is_dockers() {
        let before = StatsReading {
            up: true,
            cpu_usage_ns: Some(1_000),
            system_cpu_ns: Some(10_000),
            online_cpus: 2,
            ..Default::default()
        };
        let now = StatsReading {
            up: true,
            read: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1)),
            cpu_usage_ns: Some(3_000),
            system_cpu_ns: Some(20_000),
            online_cpus: 2,
            memory: 4096,
            memory_limit: 1 << 30,
            pids: 3,
            block_io: Some((10, 20)),
            ..Default::default()
        };
        let v = stats_json("web", "abc", &now, Some(&before));
        assert_eq!(v["name"], "/web");
        assert_eq!(v["read"], "1970-01-01T00:00:01.000000000Z");
        assert_eq!(v["preread"], "0001-01-01T00:00:00Z");
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 3_000);
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 1_000);
        assert_eq!(v["precpu_stats"]["system_cpu_usage"], 10_000);
        assert_eq!(v["cpu_stats"]["online_cpus"], 2);
        assert_eq!(v["memory_stats"]["usage"], 4096);
        assert_eq!(v["pids_stats"]["current"], 3);
        assert_eq!(
            v["blkio_stats"]["io_service_bytes_recursive"][1],
            json!({"major": 0, "minor": 0, "op": "write", "value": 20})
        );
    }
}
