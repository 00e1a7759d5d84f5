//! The metrics commands: `sightline targets list|add|remove`, `sightline
//! health` (every probed service's state, checks and uptime) and `sightline
//! query 'PROMQL' [--range 1h]` (a table, or one sparkline per series).

use crate::client::{Client, ServerArgs};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Subcommand, Debug)]
pub enum TargetsCommand {
    /// Every target with its last scrape.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Scrape and probe a service from now on: `add api http://127.0.0.1:8000`.
    Add {
        service: String,
        url: String,
        /// Scrape and probe interval (`15s`).
        #[arg(long)]
        interval: Option<String>,
        #[arg(long)]
        timeout: Option<String>,
        #[arg(long)]
        metrics_path: Option<String>,
        #[arg(long)]
        health_path: Option<String>,
        #[arg(long)]
        ready_path: Option<String>,
        /// Extra label on every series, `name=value` (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Stop scraping a service (by name or URL).
    Remove {
        key: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Args, Debug)]
pub struct HealthArgs {
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    /// A PromQL expression.
    query: String,
    /// Evaluate over this much time back from now (`1h`) and chart it.
    #[arg(long)]
    range: Option<String>,
    /// Resolution of a range query [default: range / 60].
    #[arg(long)]
    step: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

fn secs(d: &str) -> Result<f64, String> {
    let ns = sightline_query::time::parse_duration(d)?;
    Ok(ns as f64 / 1e9)
}

pub fn targets(cmd: TargetsCommand) -> Result<(), String> {
    match cmd {
        TargetsCommand::List { server } => {
            let c = Client::new(&server)?;
            let v = c.get("/api/v1/targets", &[])?;
            if c.json {
                c.print_json(&v);
                return Ok(());
            }
            let list = v["data"]["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if list.is_empty() {
                println!("no targets (add one: sightline targets add SERVICE http://HOST:PORT)");
            }
            for t in list {
                let health = t["health"].as_str().unwrap_or("");
                let code = match health {
                    "up" => "32",
                    "down" => "31",
                    _ => "2",
                };
                println!(
                    "{:<16} {}  {}  every {}  {} samples  last {:.1} ms  ({})",
                    c.paint("1", t["scrapePool"].as_str().unwrap_or("")),
                    c.paint(code, &format!("{health:<7}")),
                    t["scrapeUrl"].as_str().unwrap_or(""),
                    t["scrapeInterval"].as_str().unwrap_or(""),
                    t["samples"],
                    t["lastScrapeDuration"].as_f64().unwrap_or(0.0) * 1000.0,
                    t["source"].as_str().unwrap_or(""),
                );
                if let Some(e) = t["lastError"].as_str().filter(|e| !e.is_empty()) {
                    println!("                 {}", c.paint("31", e));
                }
            }
            Ok(())
        }
        TargetsCommand::Add {
            service,
            url,
            interval,
            timeout,
            metrics_path,
            health_path,
            ready_path,
            labels,
            server,
        } => {
            let mut l = serde_json::Map::new();
            for kv in labels {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("--label {kv:?}: expected name=value"))?;
                l.insert(k.to_string(), Value::String(v.to_string()));
            }
            let mut body = json!({"service": service, "url": url, "labels": l});
            for (k, v) in [
                ("interval", interval),
                ("timeout", timeout),
                ("metrics_path", metrics_path),
                ("health_path", health_path),
                ("ready_path", ready_path),
            ] {
                if let Some(v) = v {
                    body[k] = Value::String(v);
                }
            }
            let c = Client::new(&server)?;
            let v = c.send("/api/v1/targets", Some(&body))?;
            if c.json {
                c.print_json(&v);
            } else {
                println!(
                    "scraping {} ({}) as service {}",
                    v["url"].as_str().unwrap_or(""),
                    v["instance"].as_str().unwrap_or(""),
                    v["service"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        TargetsCommand::Remove { key, server } => {
            let c = Client::new(&server)?;
            let v = c.delete(&format!("/api/v1/targets/{}", urlencode(&key)))?;
            if c.json {
                c.print_json(&v);
            } else {
                println!("removed {} target(s)", v["removed"]);
            }
            Ok(())
        }
    }
}

use sightline_server::endpoints::urlencode;

pub fn health(a: HealthArgs) -> Result<(), String> {
    let c = Client::new(&a.server)?;
    let v = c.get("/api/v1/health", &[])?;
    if c.json {
        c.print_json(&v);
        return Ok(());
    }
    let list = v["services"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no probed services (add one: sightline targets add SERVICE http://HOST:PORT)");
    }
    let pct = |x: &Value| {
        x.as_f64()
            .map(|p| format!("{p:.2}%"))
            .unwrap_or_else(|| "-".into())
    };
    for s in list {
        let state = s["state"].as_str().unwrap_or("");
        let code = match state {
            "ok" => "32",
            "degraded" => "33",
            "down" => "31",
            _ => "2",
        };
        println!(
            "{:<16} {}  since {}  uptime 24h {}  7d {}  ({})",
            c.paint("1", s["service"].as_str().unwrap_or("")),
            c.paint(code, &format!("{state:<8}")),
            s["since"].as_str().unwrap_or("-").get(..19).unwrap_or("-"),
            pct(&s["uptime_24h"]),
            pct(&s["uptime_7d"]),
            s["url"].as_str().unwrap_or(""),
        );
        for (name, chk) in s["checks"].as_object().into_iter().flatten() {
            let st = chk["state"].as_str().unwrap_or("");
            println!(
                "    {:<20} {}  {}",
                name,
                c.paint(if st == "ok" { "32" } else { "31" }, st),
                c.paint("2", chk["value"].as_str().unwrap_or(""))
            );
        }
        for p in ["health", "ready"] {
            if let Some(e) = s[p]["error"].as_str() {
                println!("    {:<20} {}", format!("/{p}"), c.paint("31", e));
            }
        }
        for t in s["transitions"].as_array().into_iter().flatten().take(5) {
            println!(
                "    {}  {} → {}",
                c.paint("2", t["at"].as_str().unwrap_or("").get(..19).unwrap_or("")),
                t["from"].as_str().unwrap_or(""),
                t["to"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

fn labels_text(m: &Value) -> String {
    let obj = m.as_object().cloned().unwrap_or_default();
    let name = obj.get("__name__").and_then(|v| v.as_str()).unwrap_or("");
    let rest: Vec<String> = obj
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or("")))
        .collect();
    if rest.is_empty() && name.is_empty() {
        "{}".into()
    } else {
        format!("{name}{{{}}}", rest.join(", "))
    }
}

/// A sparkline of `values` in `width` cells (None = no sample there).
pub fn sparkline(values: &[Option<f64>], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let cells: Vec<Option<f64>> = (0..width.min(values.len()))
        .map(|i| {
            let n = width.min(values.len());
            let from = i * values.len() / n;
            let to = ((i + 1) * values.len() / n).max(from + 1);
            let xs: Vec<f64> = values[from..to]
                .iter()
                .flatten()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
        })
        .collect();
    let finite: Vec<f64> = cells.iter().flatten().copied().collect();
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    cells
        .iter()
        .map(|c| match c {
            None => ' ',
            Some(v) if hi > lo => BARS[(((v - lo) / (hi - lo)) * 7.0).round() as usize],
            Some(_) => BARS[3],
        })
        .collect()
}

pub fn query(a: QueryArgs) -> Result<(), String> {
    let c = Client::new(&a.server)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs_f64();
    let Some(range) = &a.range else {
        let v = c.get("/api/v1/query", &[("query", &a.query)])?;
        if c.json {
            c.print_json(&v);
            return Ok(());
        }
        let d = &v["data"];
        match d["resultType"].as_str() {
            Some("vector") => {
                let rows = d["result"].as_array().cloned().unwrap_or_default();
                if rows.is_empty() {
                    println!("no data");
                }
                for r in rows {
                    println!(
                        "{:>16}  {}",
                        r["value"][1].as_str().unwrap_or(""),
                        labels_text(&r["metric"])
                    );
                }
            }
            Some("scalar") | Some("string") => {
                println!("{}", d["result"][1].as_str().unwrap_or(""))
            }
            _ => c.print_json(d),
        }
        return Ok(());
    };
    let span = secs(range)?;
    let step = match &a.step {
        Some(s) => secs(s)?,
        None => (span / 60.0).max(1.0),
    };
    let (start, end) = (format!("{:.3}", now - span), format!("{now:.3}"));
    let step_s = format!("{step}");
    let v = c.get(
        "/api/v1/query_range",
        &[
            ("query", &a.query),
            ("start", &start),
            ("end", &end),
            ("step", &step_s),
        ],
    )?;
    if c.json {
        c.print_json(&v);
        return Ok(());
    }
    let series = v["data"]["result"].as_array().cloned().unwrap_or_default();
    if series.is_empty() {
        println!("no data");
    }
    let n = ((span / step).floor() as usize) + 1;
    let t0 = now - span;
    for s in series {
        let mut values = vec![None; n];
        let mut last = None;
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for p in s["values"].as_array().into_iter().flatten() {
            let t = p[0].as_f64().unwrap_or(0.0);
            let x: f64 = p[1]
                .as_str()
                .and_then(|x| x.parse().ok())
                .unwrap_or(f64::NAN);
            let i = ((t - t0) / step).round();
            if i >= 0.0 && (i as usize) < n {
                values[i as usize] = Some(x);
            }
            if x.is_finite() {
                lo = lo.min(x);
                hi = hi.max(x);
            }
            last = Some(x);
        }
        println!("{}", c.paint("1", &labels_text(&s["metric"])));
        println!(
            "  {}  min {}  max {}  last {}",
            c.paint("36", &sparkline(&values, 60)),
            if lo.is_finite() {
                format!("{lo:.4}")
            } else {
                "-".into()
            },
            if hi.is_finite() {
                format!("{hi:.4}")
            } else {
                "-".into()
            },
            last.map(|x| format!("{x:.4}"))
                .unwrap_or_else(|| "-".into()),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines() {
        let v: Vec<Option<f64>> = (0..8).map(|i| Some(i as f64)).collect();
        assert_eq!(sparkline(&v, 8), "▁▂▃▄▅▆▇█");
        assert_eq!(sparkline(&[Some(1.0), None, Some(1.0)], 3), "▄ ▄");
        assert_eq!(sparkline(&[], 10), "");
    }
}
