//! RESP values (the Redis protocol of the message queue).
#![no_main]

use dispel::wire::resp::{self, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((value, used))) = resp::decode(data) else {
        return;
    };
    assert!(used > 0 && used <= data.len());
    // Every shorter prefix of a whole value is incomplete or an error, never another value.
    for n in [0, used / 2, used - 1] {
        assert!(!matches!(resp::decode(&data[..n]), Ok(Some(_))));
    }
    // A command (an array of bulk strings) re-encodes to the bytes it came from.
    if let Value::Array(Some(items)) = &value {
        let args: Option<Vec<&[u8]>> = items
            .iter()
            .map(|v| match v {
                Value::Bulk(Some(b)) => Some(b.as_slice()),
                _ => None,
            })
            .collect();
        if let Some(args) = args {
            if data[..used].iter().all(|b| b.is_ascii()) && !args.is_empty() {
                let again = resp::encode_command(&args);
                assert_eq!(resp::decode(&again).unwrap().unwrap().0, value);
            }
        }
    }
    let _ = value.to_string();
});
