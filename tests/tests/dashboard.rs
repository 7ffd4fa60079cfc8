//! The dashboard as users see it: a real `accelbench dashboard` over a warehouse a real
//! agent filled, loaded in a real headless Chromium (the Debian package, installed by
//! `ops/dashboard/chromium.sh` where missing; the test says SKIPPED if it cannot be).
//! Each page loads with no console message (a blocked resource or a CSP violation shows
//! there); the numbers shown equal what `accelbench query` returns; the latency chart has
//! one point per measured row; a filter changes what is shown; the pages render at a
//! phone's width; bad addresses get a clear error page; every answer carries the
//! security headers.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use e2e::cdp::Browser;
use e2e::{repo_root, tiny_spec, Cluster};

struct Dashboard {
    child: Child,
    url: String,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_dashboard(warehouse: &std::path::Path) -> Dashboard {
    let mut child = Command::new(e2e::binary("accelbench"))
        .args(["dashboard", "--listen", "127.0.0.1:0", "--warehouse"])
        .arg(warehouse)
        .stdout(Stdio::piped())
        .spawn()
        .expect("accelbench dashboard starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("first line");
    let url = line.trim().strip_prefix("dashboard on ").unwrap_or_else(|| panic!("first line {line:?}")).to_string();
    Dashboard { child, url: url.trim_end_matches('/').to_string() }
}

/// The rendered DOM of `url` and Chromium's console lines.
fn load(chromium: &str, url: &str, extra: &[&str]) -> (String, Vec<String>) {
    let o = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"])
        .args(extra)
        .args(["--dump-dom", url])
        .output()
        .expect("chromium runs");
    let console =
        String::from_utf8_lossy(&o.stderr).lines().filter(|l| l.contains(":CONSOLE")).map(str::to_string).collect();
    (String::from_utf8_lossy(&o.stdout).into_owned(), console)
}

/// The cells of every row of the first table after `marker` in `html`: row → cells.
fn table_rows(html: &str) -> Vec<Vec<String>> {
    html.split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let inner = cell.split_once('>').map_or("", |(_, rest)| rest);
                    let inner = inner.split("</td>").next().unwrap_or("");
                    // Drop tags inside the cell (a link).
                    let mut text = String::new();
                    let mut in_tag = false;
                    for ch in inner.chars() {
                        match ch {
                            '<' => in_tag = true,
                            '>' => in_tag = false,
                            c if !in_tag => text.push(c),
                            _ => {}
                        }
                    }
                    text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
                })
                .collect()
        })
        .filter(|r: &Vec<String>| !r.is_empty())
        .collect()
}

fn figure<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!("<figure id=\"{id}\"")).unwrap_or_else(|| panic!("no figure {id}"));
    let rest = &html[start..];
    &rest[..rest.find("</figure>").unwrap_or(rest.len())]
}

/// Chromium's path, installed by the repo's script where missing; `None` (the test
/// says SKIPPED) when it cannot be.
fn chromium() -> Option<String> {
    let setup = Command::new("bash").arg(repo_root().join("ops/dashboard/chromium.sh")).output().expect("bash");
    if !setup.status.success() {
        eprintln!(
            "SKIPPED: no Chromium here and ops/dashboard/chromium.sh could not install one: {}",
            String::from_utf8_lossy(&setup.stderr).trim()
        );
        return None;
    }
    Some(String::from_utf8_lossy(&setup.stdout).trim().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_what_the_warehouse_holds_in_a_real_browser() {
    let Some(chromium) = chromium() else { return };
    let mut c = Cluster::start().expect("coordinator");
    c.start_agent(0).expect("agent");
    let spec = c.write_spec("s.toml", &tiny_spec("dashboard", &["bert-tiny"], &[1, 2], 30)).expect("spec");
    let id = c.submit(&spec).expect("submit");
    c.wait_done(&id, Duration::from_secs(600)).await.expect("done");
    let d = start_dashboard(&c.warehouse());

    // Every page answers 200 and loads with nothing in the console.
    let sweep_page = format!("/sweeps/{id}");
    for (path, says) in [
        ("/", format!("href=\"/sweeps/{id}\"")),
        ("/results", "<h1>Results</h1>".to_string()),
        ("/compatibility", "<h2>Compatibility</h2>".to_string()),
        (sweep_page.as_str(), "<h1>Sweep dashboard</h1>".to_string()),
    ] {
        let code = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("{}{path}", d.url)])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        assert_eq!(code, "200", "{path}");
        let (dom, console) = load(&chromium, &format!("{}{path}", d.url), &[]);
        assert!(console.is_empty(), "{path}: console says {console:?}");
        assert!(dom.contains(&says), "{path}: no {says:?} in {dom}");
    }

    // The explorer's numbers are the warehouse's.
    let expected: BTreeMap<String, f64> = c
        .query("SELECT result_id || '=' || CAST(round(latency_p50_ns / 1e6, 3) AS VARCHAR) AS r FROM latest_results WHERE status = 'ok'")
        .expect("query")
        .into_iter()
        .filter_map(|v| {
            let s = v["r"].as_str()?.to_string();
            let (id, ms) = s.split_once('=')?;
            Some((id.to_string(), ms.parse().ok()?))
        })
        .collect();
    assert_eq!(expected.len(), 4, "bert-tiny at batch 1 and 2, fp32 and bf16");
    let (dom, _) = load(&chromium, &format!("{}/results", d.url), &[]);
    let shown: BTreeMap<String, f64> = table_rows(&dom)
        .into_iter()
        .filter(|r| r.len() > 9 && r[8] == "ok")
        .map(|r| (r[0].clone(), r[9].parse().expect("p50 ms")))
        .collect();
    assert_eq!(shown, expected);
    assert_eq!(figure(&dom, "latency").matches("<circle").count(), expected.len(), "one point per measured row");

    // A filter changes what is shown.
    let (dom, _) = load(&chromium, &format!("{}/results?batch=2&precision=fp32", d.url), &[]);
    let rows: Vec<Vec<String>> = table_rows(&dom).into_iter().filter(|r| r.len() > 9).collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0][3].as_str(), rows[0][5].as_str()), ("2", "fp32"));
    assert_eq!(figure(&dom, "latency").matches("<circle").count(), 1);

    // One result's samples, and its sweep's cells.
    let one = expected.keys().next().expect("a result");
    let (dom, console) = load(&chromium, &format!("{}/results/{one}", d.url), &[]);
    assert!(console.is_empty() && dom.contains("<figure id=\"samples\""), "{console:?} {dom}");
    let (dom, _) = load(&chromium, &format!("{}/sweeps/{id}", d.url), &[]);
    assert_eq!(table_rows(&dom).iter().filter(|r| r.get(7).is_some_and(|s| s == "ok")).count(), 4, "{dom}");

    // At a phone's width the overview renders (a screenshot is taken).
    let shot = c.dir.path().join("phone.png");
    let (_, console) = load(
        &chromium,
        &format!("{}/results", d.url),
        &["--window-size=390,844", &format!("--screenshot={}", shot.display())],
    );
    assert!(console.is_empty(), "{console:?}");
    assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000), "no screenshot at {}", shot.display());

    // Bad addresses get an error page, and every answer the security headers.
    for (path, code) in
        [("/sweeps/nope", "400"), ("/results?bogus=1", "400"), ("/nowhere", "404"), ("/results/00", "400")]
    {
        let o = Command::new("curl").args(["-s", "-i", &format!("{}{path}", d.url)]).output().expect("curl");
        let text = String::from_utf8_lossy(&o.stdout).to_lowercase();
        assert!(text.starts_with(&format!("http/1.1 {code}")), "{path}: {text}");
        assert!(text.contains("content-security-policy: default-src 'none'"), "{path}: {text}");
        assert!(!text.contains("access-control-allow-origin"), "{path}: {text}");
    }
}

/// Off loopback, plain HTTP needs --insecure; the error says what to do.
#[test]
fn plain_http_off_loopback_is_refused() {
    let o = Command::new(e2e::binary("accelbench"))
        .args(["dashboard", "--listen", "0.0.0.0:0", "--warehouse", "/nonexistent-warehouse"])
        .output()
        .expect("runs");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not a loopback address") && err.contains("--insecure"), "{err}");
}

/// Served by a running coordinator, the overview shows a sweep's cells pending, the agent
/// that comes alive, and the sweep done, all in one page load, moved by the page's own
/// script (checked through the DevTools protocol); then the sweep, agent, regressions
/// and compare pages answer from the same coordinator, with nothing in the console.
#[tokio::test(flavor = "multi_thread")]
async fn a_running_sweep_moves_on_the_coordinators_dashboard_without_a_reload() {
    let Some(chromium) = chromium() else { return };
    // Plain HTTP on loopback: a headless browser has no client certificate to present
    // (the TLS listener is checked with curl in `the_dashboard_needs_a_reading_certificate`).
    let mut c = Cluster::start_insecure().expect("coordinator");
    let spec = c.write_spec("s.toml", &tiny_spec("live", &["bert-tiny"], &[1, 2], 30)).expect("spec");
    let id = c.submit(&spec).expect("submit");
    let mut b = Browser::start(std::path::Path::new(&chromium)).expect("chromium");
    b.goto(&format!("{}/", c.dashboard_url)).expect("overview");

    // No agent yet: the 4 cells are pending. Columns: sweep, name, by, submitted, cells,
    // pending, leased, ok, …
    let cell = |b: &mut Browser, i: usize| {
        b.eval(&format!("document.querySelector('tr[data-sweep=\"{id}\"]').cells[{i}].textContent"))
            .expect("the sweep's row")
    };
    assert_eq!((cell(&mut b, 4), cell(&mut b, 5), cell(&mut b, 7)), ("4".into(), "4".into(), "0".into()));
    b.eval("window.sameLoad = 42").expect("mark the page");

    c.start_agent(0).expect("agent");
    b.wait_for("document.querySelector('tr[data-agent] td.alive') !== null", Duration::from_secs(120))
        .expect("the agent shows up alive");
    let agent = c.agent_id(0).expect("agent id");
    b.wait_for(
        &format!("document.querySelector('tr[data-sweep=\"{id}\"]').cells[7].textContent === '4'"),
        Duration::from_secs(600),
    )
    .expect("all 4 cells ok, shown without a reload");
    assert_eq!(b.eval("window.sameLoad").expect("eval"), serde_json::json!(42), "the page was reloaded");
    assert_eq!(cell(&mut b, 5), "0", "none pending");
    // The counter moves once every live part of a round has been swapped in, so it may
    // trail the cell the test saw change by one fetch: wait for it rather than read it once.
    b.wait_for("Number(document.body.dataset.refreshed || 0) >= 1", Duration::from_secs(10))
        .expect("the script counted its refreshes of the live parts");

    // The sweep's page: the coordinator's progress line, and its cells' results once
    // the warehouse view catches up (it is reopened every 5 s).
    b.goto(&format!("{}/sweeps/{id}", c.dashboard_url)).expect("sweep page");
    let main = "document.querySelector('main').textContent";
    b.eval(&format!("{main}.includes('4 cells: 4 ok')"))
        .expect("eval")
        .as_bool()
        .filter(|x| *x)
        .expect("progress line");
    b.wait_for(&format!("document.querySelectorAll('td.ok').length === 4"), Duration::from_secs(30))
        .expect("4 ok cells in the table");

    // The agent's page: alive, its fingerprint, what it ran.
    b.goto(&format!("{}/agents/{agent}", c.dashboard_url)).expect("agent page");
    b.wait_for(&format!("{main}.includes('alive') && {main}.includes('What it ran')"), Duration::from_secs(30))
        .expect("agent page content");
    b.wait_for("document.querySelectorAll('details pre').length >= 1", Duration::from_secs(30)).expect("a fingerprint");

    // Regressions (none recorded) and compare: the sweep against itself is the same
    // everywhere, as `accelbench compare` says.
    b.goto(&format!("{}/regressions", c.dashboard_url)).expect("regressions page");
    assert!(b.eval(&format!("{main}.includes('None recorded')")).expect("eval").as_bool().unwrap_or(false));
    b.goto(&format!("{}/compare?base={id}&new={id}", c.dashboard_url)).expect("compare page");
    let cli = c.cli(&["compare", &id, &id, "--warehouse", &c.warehouse().to_string_lossy()]);
    let says = String::from_utf8_lossy(&cli.stderr);
    let summary = says.lines().find(|l| l.starts_with("4 pairs: 0 slower")).unwrap_or_else(|| panic!("{says}"));
    let page = b.eval(main).expect("eval");
    assert!(page.as_str().is_some_and(|p| p.contains(summary)), "the page says {page}, the CLI {summary:?}");
    assert!(b.log.is_empty(), "the pages logged: {:?}", b.log);
}

/// Over TLS the coordinator's dashboard answers a reader's certificate, and refuses an
/// agent's certificate and a client without one.
#[tokio::test(flavor = "multi_thread")]
async fn the_coordinators_dashboard_needs_a_reading_certificate() {
    let c = Cluster::start().expect("coordinator");
    let url = format!("{}/", c.dashboard_url);
    assert!(url.starts_with("https://"), "{url}");
    let reader = c.auth(&["--user", "viewer", "--role", "reader"]).expect("reader cert");
    let (head, body) = e2e::http_get(&url, &reader).expect("GET as a reader");
    assert!(head.lines().next().is_some_and(|l| l.contains(" 200")), "{head}");
    assert!(body.contains("<h1>Sweeps</h1>") && head.to_lowercase().contains("content-security-policy"), "{head}");
    let agent = c.auth(&["--agent", "a1"]).expect("agent cert");
    for (who, auth) in [
        ("an agent", &agent),
        ("no certificate", &proto::connect::ClientAuth { ca: reader.ca.clone(), ..Default::default() }),
    ] {
        let answer = e2e::http_get(&url, auth);
        assert!(answer.is_err() || !answer.as_ref().is_ok_and(|(h, _)| h.contains(" 200")), "{who}: {answer:?}");
    }
}
