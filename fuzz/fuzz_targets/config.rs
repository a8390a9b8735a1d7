//! The configuration parser and the decoder compiler: any text. A bad file
//! is an error naming what is wrong, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(config) = toml::from_str::<config::Config>(text) {
        let names: Vec<String> =
            config.sources.iter().enumerate().map(|(i, s)| s.name.clone().unwrap_or_else(|| format!("s{i}"))).collect();
        if let Ok(decoders) = decode::Decoders::new(&config, &names) {
            // A compiled configuration decodes without panicking.
            let mut state = decode::SourceState::default();
            for name in names.iter().map(String::as_str).chain(["other"]) {
                for line in
                    ["OK 2 1 115 179 0", "{\"model\":\"x\",\"id\":1,\"t\":1.5}", "a=1 b=2", "1,2,3", "[RF12demo.12] _ i31* g5 @ 868 MHz"]
                {
                    let _ = decoders.decode(name, 0, line, &mut state);
                    let _ = decoders.events(name, line);
                }
            }
        }
    }
});
