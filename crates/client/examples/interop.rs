//! Cross-client check used by the Python interop tests:
//! `interop <address> <password> read <map>`: prints the map's entries,
//! one `key=<type>:<value>` per line, sorted;
//! `interop <address> <password> write <map>`: writes one value of each type.

use ferrocast_client::{Client, ClientConfig, Json, Value};

fn show(v: &Value) -> String {
    if let Ok(s) = v.to::<String>() {
        return format!("str:{s}");
    }
    if let Ok(i) = v.to::<i32>() {
        return format!("int:{i}");
    }
    if let Ok(i) = v.to::<i64>() {
        return format!("long:{i}");
    }
    if let Ok(f) = v.to::<f64>() {
        return format!("float:{f}");
    }
    if let Ok(b) = v.to::<bool>() {
        return format!("bool:{b}");
    }
    if let Ok(b) = v.to::<Vec<u8>>() {
        return format!("bytes:{b:?}");
    }
    if let Ok(Json(j)) = v.to::<Json<serde_json::Value>>() {
        return format!("json:{j}");
    }
    format!("unknown:{:?}", v.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, password, mode, map] = &args[..] else {
        eprintln!("usage: interop <address> <password> read|write <map>");
        std::process::exit(2);
    };
    let client =
        Client::connect(ClientConfig::new(vec![addr.parse()?]).credentials("dev", password))
            .await?;
    let m = client.map(map);
    match mode.as_str() {
        "read" => {
            let mut lines: Vec<String> = m
                .entry_set()
                .await?
                .iter()
                .map(|(k, v)| format!("{}={}", k.to::<String>().unwrap_or_default(), show(v)))
                .collect();
            lines.sort();
            for l in lines {
                println!("{l}");
            }
        }
        "write" => {
            m.put("str", "from rust ✓").await?;
            m.put("int", 42i32).await?;
            m.put("long", 1i64 << 40).await?;
            m.put("float", 2.5f64).await?;
            m.put("bool", true).await?;
            m.put("bytes", vec![1u8, 2, 3]).await?;
            m.put(
                "json",
                Json(serde_json::json!({"lang": "rust", "n": [1, 2]})),
            )
            .await?;
        }
        _ => std::process::exit(2),
    }
    client.shutdown();
    Ok(())
}
