use super::*;

fn load(toml: &str, env: &[(&'static str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.toml");
    std::fs::write(&file, toml).expect("write config");
    let env: BTreeMap<&str, String> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
    Config::load(
        Some(&file),
        |var| env.get(var).map(Into::into),
        &FlagValues::default(),
    )
}

#[test]
fn file_values_apply_with_their_line() {
    let config = load(
        "backend = \"memory\"\n[log]\npartitions = 3\nsync_interval = \"250ms\"\n",
        &[],
    )
    .expect("valid config");
    assert_eq!(config.backend, BackendKind::Memory);
    assert_eq!(config.partitions, 3);
    assert_eq!(config.sync_interval, Duration::from_millis(250));
    let origin = config.origin("log.partitions").to_string();
    assert!(origin.ends_with("config.toml:3:14"), "{origin}");
}

#[test]
fn removed_iggy_keys_are_refused_with_what_replaced_them() {
    let err = load("[iggy]\nflush = \"never\"\n", &[])
        .expect_err("iggy.flush")
        .to_string();
    assert!(err.starts_with("`iggy.flush` in "), "{err}");
    assert!(err.contains("config.toml:2:1 is no longer a key"), "{err}");
    assert!(err.contains("`log.durability`"), "{err}");
    let err = load("[iggy]\nmode = \"managed\"\npartitions = 4\n", &[])
        .expect_err("iggy.partitions")
        .to_string();
    assert!(err.contains("config.toml:3:1 is no longer a key"), "{err}");
    assert!(err.contains("`log.partitions`"), "{err}");
}

#[test]
fn iggy_keys_have_origins_and_environment_overrides_like_every_key() {
    let config = load(
        "[iggy]\nmode = \"external\"\nfsync = false\ncpu_allocation = \"0..2\"\nsaver_interval = \"250ms\"\n",
        &[
            ("VIBES_IGGY_MODE", "managed"),
            ("VIBES_IGGY_MEMORY_POOL_MIB", "0"),
            ("VIBES_IGGY_FSYNC", "true"),
        ],
    )
    .expect("valid config");
    assert_eq!(config.iggy.mode, vibes_iggy::Mode::Managed);
    assert_eq!(config.origin("iggy.mode"), &Origin::Env("VIBES_IGGY_MODE"));
    assert_eq!(config.iggy.memory_pool_mib, 0);
    assert!(config.iggy.fsync);
    assert_eq!(
        config.iggy.cpu_allocation,
        vibes_iggy::config::CpuAllocation::Cores { start: 0, end: 2 }
    );
    let origin = config.origin("iggy.cpu_allocation").to_string();
    assert!(origin.ends_with("config.toml:4:18"), "{origin}");
    assert_eq!(config.iggy.saver_interval, Duration::from_millis(250));
    assert_eq!(config.origin("iggy.stop_grace"), &Origin::Default);
    // The data directory of a managed server follows data_dir unless set.
    assert_eq!(config.iggy.data_dir, Some(config.data_dir.join("iggy")));
}

#[test]
fn a_bad_iggy_value_names_the_key_where_it_was_set_and_the_fix() {
    let err = load("[iggy]\nmode = \"sideways\"\n", &[])
        .expect_err("mode")
        .to_string();
    assert!(
        err.starts_with("invalid value \"sideways\" for `iggy.mode` in "),
        "{err}"
    );
    assert!(err.contains("config.toml:2:8"), "{err}");
    assert!(err.ends_with("expected managed or external"), "{err}");
    // Checked with the rest of the section: still the key and where it was set.
    let err = load("[iggy]\n\nmemory_pool_mib = 256\n", &[])
        .expect_err("pool")
        .to_string();
    assert!(
        err.starts_with("invalid value for `iggy.memory_pool_mib` in "),
        "{err}"
    );
    assert!(err.contains("config.toml:3:19: 256 MiB is below"), "{err}");
    let err = load("", &[("VIBES_IGGY_TCP_ADDRESS", "localhost")])
        .expect_err("address")
        .to_string();
    assert!(
        err.starts_with(
            "invalid value for `iggy.tcp_address` in environment variable VIBES_IGGY_TCP_ADDRESS: "
        ),
        "{err}"
    );
    let err = load("[iggy]\ntcp_adress = \"127.0.0.1:1\"\n", &[])
        .expect_err("typo")
        .to_string();
    assert!(
        err.ends_with(
            "line 2, column 1: unknown key `iggy.tcp_adress` (`vibes config show` lists every key)"
        ),
        "{err}"
    );
}

#[test]
fn iggy_secrets_are_never_shown() {
    let config = load(
        "[iggy]\nmode = \"external\"\nusername = \"vibes\"\npassword = \"hunter2\"\n",
        &[("VIBES_IGGY_CONNECTION_STRING", "iggy://a:hunter3@h:1")],
    )
    .expect("valid config");
    let entries = config.entries();
    let shown = |key: &str| entries.iter().find(|(k, ..)| *k == key).unwrap().1.clone();
    assert_eq!(shown("iggy.password"), "\"***\"");
    assert_eq!(shown("iggy.connection_string"), "\"***\"");
    assert_eq!(shown("iggy.username"), "\"vibes\"");
    assert_eq!(shown("iggy.quic_address"), "\"none\"");
    assert!(!format!("{entries:?}").contains("hunter"));
    assert_eq!(
        config.iggy.password.as_ref().map(|p| p.expose()),
        Some("hunter2")
    );
}

#[test]
fn every_key_is_overridden_by_the_variable_its_name_gives() {
    let mut names = std::collections::BTreeSet::new();
    for key in KEYS {
        assert!(names.insert(key.name), "{} twice", key.name);
        let env = format!("VIBES_{}", key.name.to_uppercase().replace('.', "_"));
        assert_eq!(key.env, env, "{}", key.name);
    }
}

#[test]
fn every_shown_value_reads_back_as_the_same_value() {
    let config = load(
        "[iggy]\nmode = \"external\"\nquic_address = \"127.0.0.1:8080\"\ncpu_allocation = \"0..2\"\n[log]\nretention_max_age = \"7days\"\n",
        &[],
    )
    .expect("valid config");
    for (name, shown, _) in config.entries() {
        let again = load(&format!("{name} = {shown}\n"), &[])
            .unwrap_or_else(|e| panic!("{name} = {shown}: {e}"));
        let (_, value, origin) = again
            .entries()
            .into_iter()
            .find(|(n, ..)| *n == name)
            .map(|(n, v, o)| (n, v, o.clone()))
            .unwrap();
        assert_eq!(value, shown, "{name}");
        assert!(matches!(origin, Origin::File { .. }), "{name}: {origin}");
    }
}

#[test]
fn environment_overrides_the_file() {
    let config = load(
        "[log]\ndurability = \"never\"\n",
        &[("VIBES_LOG_DURABILITY", "interval")],
    )
    .expect("valid config");
    assert_eq!(config.durability, DurabilityLevel::Interval);
    assert_eq!(
        config.origin("log.durability"),
        &Origin::Env("VIBES_LOG_DURABILITY")
    );
}

#[test]
fn a_bad_value_names_key_place_and_what_is_allowed() {
    let err = load("[log]\n\ndurability = \"sometimes\"\n", &[])
        .expect_err("bad durability")
        .to_string();
    assert!(
        err.starts_with("invalid value \"sometimes\" for `log.durability` in "),
        "{err}"
    );
    assert!(err.contains("config.toml:3:14"), "{err}");
    assert!(err.ends_with("expected always, interval or never"), "{err}");
}

#[test]
fn a_wrong_type_is_named() {
    let err = load("[log]\npartitions = \"many\"\n", &[])
        .expect_err("bad partitions")
        .to_string();
    assert!(err.contains("\"many\" for `log.partitions`"), "{err}");
    assert!(
        err.ends_with("expected a whole number from 1 to 1024"),
        "{err}"
    );
    let err = load("backend = true\n", &[]).expect_err("bool").to_string();
    assert!(err.contains("a TOML boolean for `backend`"), "{err}");
}

#[test]
fn unknown_keys_are_errors_with_a_line() {
    let err = load("[log]\npartitons = 2\n", &[])
        .expect_err("typo")
        .to_string();
    assert!(err.contains("line 2, column 1"), "{err}");
    assert!(err.contains("partitons"), "{err}");
}

#[test]
fn durations_sizes_and_none() {
    let config = load(
        "[log]\nsegment_bytes = \"8MiB\"\nretention_max_age = \"7days\"\nretention_max_bytes = \"none\"\n[bd]\ndebounce = \"1s\"\n",
        &[],
    )
    .expect("valid");
    assert_eq!(config.segment_bytes, 8 << 20);
    assert_eq!(
        config.retention_max_age,
        Some(Duration::from_secs(7 * 86400))
    );
    assert_eq!(config.retention_max_bytes, None);
    assert_eq!(config.bd_debounce, Duration::from_secs(1));
    let err = load("[log]\nsegment_bytes = \"8 parsecs\"\n", &[])
        .expect_err("unit")
        .to_string();
    assert!(err.contains("unknown unit `parsecs`"), "{err}");
}

#[test]
fn a_missing_named_file_is_an_error() {
    let err = Config::load(
        Some(Path::new("/nonexistent/vibes.toml")),
        |_| None,
        &FlagValues::default(),
    )
    .expect_err("missing");
    assert!(
        err.to_string()
            .starts_with("cannot read config file /nonexistent/vibes.toml")
    );
}
