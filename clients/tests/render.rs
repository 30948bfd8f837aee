//! What each client gets, checked by decoding it the way the client (or its shell) will:
//! commands split into argv by POSIX rules (and run by real shells), links URL- and
//! base64-decoded, JSON and TOML parsed. Snapshots pin the full output for fixed inputs.

use base64::Engine as _;
use percent_encoding::percent_decode_str;
use rapport_clients::{
    API_KEY_ENV, Client, DEFAULT_NAME, Install, Kind, mcp_url, render, render_all, shell_quote, validate_name,
};
use serde_json::{Value, json};

const URL: &str = "https://crm.example.com/api/v1/mcp";
const KEY: &str = "rpk_3kTMd8Lz0qVbN5xWc7RyH2fJ9aGp4sE6uQ1oI8vYtK0mZrX2nB5wC7dF9h0K1a2B";

/// Inputs that break naive quoting: spaces, both quotes, `$`, backticks, `!`, `\`, a lone
/// `'` at the ends, `&&`, `;`, `#`, `~`, globs, a newline and non-ASCII.
fn hostile() -> Vec<(String, String, String)> {
    let nasty = r#"a b'c"d$HOME`id`!!\n\ e&&f;g#h~*?[x]{y,z}|<>()"#;
    vec![
        (format!("{URL}?toolsets=contacts,deals&q='{nasty}'"), format!("my {nasty} crm"), format!("rpk_{nasty}")),
        (format!("http://h/{nasty}"), "'".to_owned(), "'\n$(touch /tmp/pwned)'".to_owned()),
        ("http://127.0.0.1:8080/api/v1/mcp".to_owned(), "-rapport é".to_owned(), String::new()),
        (URL.to_owned(), DEFAULT_NAME.to_owned(), KEY.to_owned()),
    ]
}

fn split(command: &str) -> Vec<String> {
    shell_words::split(command).unwrap_or_else(|e| panic!("{command:?} does not split: {e}"))
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// The argv each command should produce, program first.
fn expected_argv(client: Client, url: &str, name: &str, key: &str) -> Vec<String> {
    let header = format!("x-api-key: {key}");
    match client {
        Client::ClaudeCode => strings(&["claude", "mcp", "add", "--transport", "http", name, url, "--header", &header]),
        Client::Codex => strings(&[
            "export",
            &format!("RAPPORT_API_KEY={key}"),
            "&&",
            "codex",
            "mcp",
            "add",
            name,
            "--url",
            url,
            "--bearer-token-env-var",
            "RAPPORT_API_KEY",
        ]),
        Client::Vscode => strings(&["code", "--add-mcp", &vscode_config(url, name, key)]),
        Client::Gemini => {
            strings(&["gemini", "mcp", "add", "--transport", "http", "--scope", "user", "--header", &header, name, url])
        }
        _ => panic!("{client} gets no command"),
    }
}

fn vscode_config(url: &str, name: &str, key: &str) -> String {
    serde_json::to_string(&vscode_value(url, name, key)).unwrap()
}

fn vscode_value(url: &str, name: &str, key: &str) -> Value {
    json!({"name": name, "type": "http", "url": url, "headers": {"x-api-key": key}})
}

const COMMAND_CLIENTS: [Client; 4] = [Client::ClaudeCode, Client::Codex, Client::Vscode, Client::Gemini];

#[test]
fn commands_split_into_the_intended_argv() {
    for (url, name, key) in hostile() {
        for client in COMMAND_CLIENTS {
            let install = render(client, &url, &name, &key);
            assert_eq!(install.kind, Kind::Command);
            let mut argv = split(&install.value);
            if client == Client::Vscode {
                // The JSON argument must be the same object, and the link the same JSON.
                let got: Value = serde_json::from_str(&argv[2]).unwrap();
                assert_eq!(got, vscode_value(&url, &name, &key));
                argv[2] = vscode_config(&url, &name, &key);
            }
            assert_eq!(argv, expected_argv(client, &url, &name, &key), "{client}: {}", install.value);
        }
    }
}

/// Runs each command in every POSIX-ish shell on this machine, with the client programs
/// replaced by functions that print their argv (NUL-separated), and Codex's function also
/// printing the exported key as a child process sees it.
#[cfg(unix)]
#[test]
fn commands_run_unchanged_in_real_shells() {
    const FAKES: &str = r#"
claude() { printf '%s\0' claude "$@"; }
gemini() { printf '%s\0' gemini "$@"; }
code() { printf '%s\0' code "$@"; }
codex() { sh -c 'printf "%s\0" "RAPPORT_API_KEY=$RAPPORT_API_KEY"'; printf '%s\0' codex "$@"; }
"#;
    // Each shell runs the script from stdin; bash a second time with history expansion on,
    // as at an interactive prompt (where an unquoted or double-quoted `!!` would be replaced).
    let mut shells: Vec<(&str, &str)> = ["/bin/sh", "/bin/dash", "/bin/bash", "/usr/bin/zsh", "/bin/zsh"]
        .into_iter()
        .filter(|s| std::path::Path::new(s).exists())
        .map(|s| (s, ""))
        .collect();
    assert!(!shells.is_empty());
    if std::path::Path::new("/bin/bash").exists() {
        const HISTORY: &str = "set -o history -H\n: warm up the history\n";
        // The harness is meaningful: this is where a double-quoted `!!` is expanded.
        assert_ne!(run("/bin/bash", &format!("{HISTORY}printf %s \"x!!y\"\n")), "x!!y");
        shells.push(("/bin/bash", HISTORY));
    }
    for (shell, prelude) in &shells {
        for (url, name, key) in hostile() {
            for client in COMMAND_CLIENTS {
                let install = render(client, &url, &name, &key);
                let script = format!("{prelude}{FAKES}\n{}\n", install.value);
                let out = run(shell, &script);
                let mut argv: Vec<String> = out.split_terminator('\0').map(str::to_owned).collect();
                let mut expected = expected_argv(client, &url, &name, &key);
                if client == Client::Codex {
                    // `export K=V &&` is shell syntax, not argv; what it leaves is the variable.
                    expected.drain(..3);
                    expected.insert(0, format!("RAPPORT_API_KEY={key}"));
                }
                if client == Client::Vscode {
                    argv[2] = serde_json::to_string(&serde_json::from_str::<Value>(&argv[2]).unwrap()).unwrap();
                }
                assert_eq!(argv, expected, "{shell} {prelude:?} {client}: {}", install.value);
            }
        }
    }
}

#[cfg(unix)]
fn run(shell: &str, script: &str) -> String {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    let mut child = Command::new(shell)
        .arg("-s")
        .env_remove("RAPPORT_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{shell}: {}\n{script}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn header_is_double_quoted_as_the_spec_writes_it_for_real_keys() {
    let claude = render(Client::ClaudeCode, URL, DEFAULT_NAME, KEY).value;
    assert_eq!(claude, format!("claude mcp add --transport http rapport {URL} --header \"x-api-key: {KEY}\""));
    let gemini = render(Client::Gemini, URL, DEFAULT_NAME, KEY).value;
    assert_eq!(
        gemini,
        format!("gemini mcp add --transport http --scope user --header \"x-api-key: {KEY}\" rapport {URL}")
    );
    let odd = render(Client::ClaudeCode, URL, DEFAULT_NAME, "k$y").value;
    assert!(odd.ends_with("--header 'x-api-key: k$y'"), "{odd}");
}

#[test]
fn codex_is_one_line_joined_with_and() {
    let codex = render(Client::Codex, URL, DEFAULT_NAME, KEY).value;
    assert_eq!(
        codex,
        format!(
            "export RAPPORT_API_KEY={KEY} && codex mcp add rapport --url {URL} --bearer-token-env-var RAPPORT_API_KEY"
        )
    );
}

#[test]
fn vscode_link_decodes_to_the_config() {
    for (url, name, key) in hostile() {
        let install = render(Client::Vscode, &url, &name, &key);
        let [link] = install.alternatives.as_slice() else { panic!("one alternative") };
        assert_eq!(link.kind, Kind::Deeplink);
        let query = link.value.strip_prefix("vscode:mcp/install?").expect("vscode:mcp/install? link");
        assert!(query.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)), "{query}");
        let decoded = percent_decode_str(query).decode_utf8().unwrap();
        let value: Value = serde_json::from_str(&decoded).unwrap();
        assert_eq!(value, vscode_value(&url, &name, &key));
        // The very JSON the `--add-mcp` command passes, with the spec's key order.
        assert_eq!(split(&install.value)[2], decoded);
        assert!(decoded.starts_with(r#"{"name":"#), "{decoded}");
        let parsed = url::Url::parse(&link.value).unwrap();
        assert_eq!(parsed.scheme(), "vscode");
        assert_eq!(parsed.path(), "mcp/install");
    }
}

#[test]
fn cursor_config_decodes_to_the_server_object() {
    for (url, name, key) in hostile() {
        let install = render(Client::Cursor, &url, &name, &key);
        assert_eq!(install.kind, Kind::Deeplink);
        let link = url::Url::parse(&install.value).unwrap();
        assert_eq!(link.scheme(), "cursor");
        assert_eq!(link.host_str(), Some("anysphere.cursor-deeplink"));
        assert_eq!(link.path(), "/mcp/install");
        let pairs: Vec<(String, String)> = link.query_pairs().into_owned().collect();
        let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["name", "config"]);
        assert_eq!(pairs[0].1, name);
        let config = base64::engine::general_purpose::STANDARD.decode(&pairs[1].1).unwrap();
        let config: Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(config, json!({"url": url, "headers": {"x-api-key": key}}));

        // The mcp.json alternative holds the same server under its name.
        let [alt] = install.alternatives.as_slice() else { panic!("one alternative") };
        assert_eq!(alt.kind, Kind::Config);
        let file: Value = serde_json::from_str(&alt.value).unwrap();
        assert_eq!(file, json!({"mcpServers": {name: config}}));
    }
    // Base64's `+`, `/` and `=` are encoded, so `URLSearchParams` cannot read `+` as a space.
    let link = render(Client::Cursor, "https://h/?>>>", "n", "???>").value;
    let config = link.split("config=").nth(1).unwrap();
    assert!(!config.contains(['+', '/', '=']), "{config}");
    assert!(config.contains("%2B") || config.contains("%2F"), "{config}");
}

#[test]
fn windsurf_entry_parses() {
    for (url, name, key) in hostile() {
        let install = render(Client::Windsurf, &url, &name, &key);
        assert_eq!(install.kind, Kind::Config);
        assert!(install.instructions.contains("~/.codeium/windsurf/mcp_config.json"));
        let entry: Value = serde_json::from_str(&install.value).unwrap();
        assert_eq!(entry, json!({"mcpServers": {name: {"serverUrl": url, "headers": {"x-api-key": key}}}}));
    }
}

#[test]
fn connector_url_carries_the_key() {
    for (url, name, key) in hostile() {
        for client in [Client::ClaudeDesktop, Client::Chatgpt] {
            let install = render(client, &url, &name, &key);
            assert_eq!(install.kind, Kind::ConnectorUrl);
            let parsed = url::Url::parse(&install.value).unwrap();
            let keys: Vec<String> =
                parsed.query_pairs().filter(|(k, _)| k == "api_key").map(|(_, v)| v.into_owned()).collect();
            assert_eq!(keys, std::slice::from_ref(&key), "{}", install.value);
            // Whatever query the URL had is kept, in front of the key.
            let before_fragment = url.split('#').next().unwrap();
            if let Some((_, query)) = before_fragment.split_once('?') {
                let kept = format!("?{query}&api_key=");
                assert!(install.value.contains(&kept), "{}", install.value);
            }
        }
    }
}

#[test]
fn connector_url_forms() {
    let cases = [
        (URL, format!("{URL}?api_key={KEY}")),
        ("https://h/mcp?x=1", format!("https://h/mcp?x=1&api_key={KEY}")),
        ("https://h/mcp?", format!("https://h/mcp?api_key={KEY}")),
        ("https://h/mcp?x=1&", format!("https://h/mcp?x=1&api_key={KEY}")),
        ("https://h/mcp#top", format!("https://h/mcp?api_key={KEY}#top")),
    ];
    for (url, want) in cases {
        assert_eq!(render(Client::ClaudeDesktop, url, "n", KEY).value, want);
        assert_eq!(render(Client::Chatgpt, url, "n", KEY).value, want);
    }
    assert_eq!(render(Client::Chatgpt, URL, "n", "a+b/c=d&e f").value, format!("{URL}?api_key=a%2Bb%2Fc%3Dd%26e%20f"));
}

#[test]
fn codex_toml_alternative_is_valid_toml() {
    for (url, name, key) in hostile() {
        let install = render(Client::Codex, &url, &name, &key);
        let [alt] = install.alternatives.as_slice() else { panic!("one alternative") };
        assert_eq!(alt.kind, Kind::Config);
        let table: toml::Table = toml::from_str(&alt.value).unwrap_or_else(|e| panic!("{}\n{e}", alt.value));
        let server = &table["mcp_servers"][name.as_str()];
        assert_eq!(server["url"].as_str(), Some(url.as_str()));
        assert_eq!(server["bearer_token_env_var"].as_str(), Some(API_KEY_ENV));
        assert_eq!(table.len(), 1);
        assert_eq!(table["mcp_servers"].as_table().unwrap().len(), 1);
    }
    let plain = render(Client::Codex, URL, DEFAULT_NAME, KEY);
    assert!(!plain.alternatives[0].value.contains(KEY), "the key stays in the environment");
    assert_eq!(
        plain.alternatives[0].value,
        format!("[mcp_servers.rapport]\nurl = \"{URL}\"\nbearer_token_env_var = \"RAPPORT_API_KEY\"")
    );
    let dotted = render(Client::Codex, URL, "a.b", KEY);
    assert!(dotted.alternatives[0].value.starts_with("[mcp_servers.\"a.b\"]\n"));
}

#[test]
fn kinds_and_instructions() {
    let kinds = [
        (Client::ClaudeCode, Kind::Command, 0),
        (Client::Codex, Kind::Command, 1),
        (Client::Vscode, Kind::Command, 1),
        (Client::Cursor, Kind::Deeplink, 1),
        (Client::Gemini, Kind::Command, 0),
        (Client::Windsurf, Kind::Config, 0),
        (Client::ClaudeDesktop, Kind::ConnectorUrl, 0),
        (Client::Chatgpt, Kind::ConnectorUrl, 0),
    ];
    let all = render_all(URL, DEFAULT_NAME, KEY);
    assert_eq!(all.len(), kinds.len());
    for (install, (client, kind, alternatives)) in all.iter().zip(kinds) {
        assert_eq!(install.client, client);
        assert_eq!(install.kind, kind, "{client}");
        assert_eq!(install.alternatives.len(), alternatives, "{client}");
        for instructions in
            std::iter::once(&install.instructions).chain(install.alternatives.iter().map(|a| &a.instructions))
        {
            assert!(!instructions.is_empty());
            assert!(!instructions.contains('\n'), "{client}: one line");
            assert!(!instructions.contains("  "), "{client}: {instructions}");
        }
    }
    let where_ = |c| render(c, URL, DEFAULT_NAME, KEY).instructions;
    assert!(where_(Client::ClaudeCode).contains("~/.claude.json"));
    assert!(where_(Client::Codex).contains("~/.codex/config.toml"));
    assert!(where_(Client::Vscode).contains("mcp.json"));
    assert!(where_(Client::Cursor).contains("~/.cursor/mcp.json"));
    assert!(where_(Client::Gemini).contains("~/.gemini/settings.json"));
    assert!(where_(Client::ClaudeDesktop).contains("Add custom connector"));
    assert!(where_(Client::Chatgpt).contains("developer mode"));
}

#[test]
fn serialized_shape() {
    let install = render(Client::ClaudeDesktop, URL, DEFAULT_NAME, KEY);
    let value = serde_json::to_value(&install).unwrap();
    assert_eq!(
        value,
        json!({
            "client": "claude-desktop",
            "kind": "connector_url",
            "value": format!("{URL}?api_key={KEY}"),
            "instructions": install.instructions,
            "alternatives": [],
        })
    );
    for kind in [Kind::Command, Kind::Deeplink, Kind::Config, Kind::ConnectorUrl] {
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
    }
    assert_eq!(serde_json::to_value(Kind::ConnectorUrl).unwrap(), "connector_url");
}

#[test]
fn debug_never_shows_the_key() {
    for install in render_all(URL, DEFAULT_NAME, KEY) {
        let debug = format!("{install:?}");
        assert!(!debug.contains(&KEY[4..]), "{debug}");
        assert!(debug.contains("redacted"), "{debug}");
    }
}

#[test]
fn client_names() {
    let names: Vec<&str> = Client::ALL.iter().map(Client::as_str).collect();
    assert_eq!(names, ["claude-code", "codex", "vscode", "cursor", "gemini", "windsurf", "claude-desktop", "chatgpt"]);
    for &client in Client::ALL {
        assert_eq!(Client::parse(client.as_str()), Ok(client));
        assert_eq!(client.as_str().parse::<Client>(), Ok(client));
        assert_eq!(client.to_string(), client.as_str());
        assert_eq!(serde_json::to_value(client).unwrap(), client.as_str());
        assert_eq!(serde_json::from_value::<Client>(json!(client.as_str())).unwrap(), client);
        assert_eq!(Client::select(client.as_str()).unwrap(), [client]);
        assert!(!client.title().is_empty());
    }
    assert_eq!(Client::parse(" Claude_Code "), Ok(Client::ClaudeCode));
    assert_eq!(Client::parse("VSCode"), Ok(Client::Vscode));
    assert_eq!(Client::select("ALL").unwrap(), Client::ALL);
    assert!(Client::parse("all").is_err());

    let err = Client::parse("claude").unwrap_err();
    assert_eq!(err.given, "claude");
    assert_eq!(
        err.to_string(),
        "unknown client \"claude\": expected one of claude-code, codex, vscode, cursor, gemini, \
         windsurf, claude-desktop, chatgpt, or all"
    );
    let err = serde_json::from_value::<Client>(json!("emacs")).unwrap_err();
    assert!(err.to_string().contains("expected one of claude-code"), "{err}");
}

#[test]
fn names_and_urls() {
    assert_eq!(mcp_url("http://127.0.0.1:8080"), "http://127.0.0.1:8080/api/v1/mcp");
    assert_eq!(mcp_url("https://crm.example.com//"), URL);
    assert_eq!(mcp_url("https://example.com/crm/"), "https://example.com/crm/api/v1/mcp");

    for ok in ["rapport", "rapport-prod", "crm_2", "A", &"x".repeat(64)] {
        assert_eq!(validate_name(ok), Ok(()), "{ok}");
    }
    for bad in ["", "-rapport", "a b", "a.b", "é", "a'b", &"x".repeat(65)] {
        let err = validate_name(bad).unwrap_err();
        assert_eq!(err.given, bad);
        assert!(err.to_string().contains("letters, digits"), "{err}");
    }
}

#[test]
fn shell_quote_round_trips() {
    for (url, name, key) in hostile() {
        for s in [url, name, key] {
            assert_eq!(split(&shell_quote(&s)), std::slice::from_ref(&s));
        }
    }
}

#[test]
fn snapshots() {
    for install in render_all(URL, DEFAULT_NAME, KEY) {
        insta::assert_json_snapshot!(install.client.as_str(), install);
    }
}

/// The quoting of awkward names, URLs and keys, visible as text.
#[test]
fn snapshot_quoting() {
    let url = "https://crm.example.com/api/v1/mcp?toolsets=contacts,deals";
    let name = r#"it's "my" $CRM `x` !\"#;
    let key = "rpk_it's";
    let text: String = render_all(url, name, key)
        .iter()
        .map(|install: &Install| {
            let mut block = format!("== {} ({})\n{}\n", install.client, install.kind, install.value);
            for alt in &install.alternatives {
                block.push_str(&format!("-- alternative ({})\n{}\n", alt.kind, alt.value));
            }
            block
        })
        .collect();
    insta::assert_snapshot!("quoting", text);
}
