//! ARNs in AWS's format, with the configured account and region: buses
//! (`arn:aws:events:{region}:{account}:event-bus/{name}`), rules (`…:rule/{name}` on the default
//! bus, `…:rule/{bus}/{name}` on others).

use super::AwsError;
use crate::api::DEFAULT_BUS;

pub fn bus(region: &str, account: &str, bus: &str) -> String {
    format!("arn:aws:events:{region}:{account}:event-bus/{bus}")
}

pub fn rule(region: &str, account: &str, bus: &str, rule: &str) -> String {
    if bus == DEFAULT_BUS {
        format!("arn:aws:events:{region}:{account}:rule/{rule}")
    } else {
        format!("arn:aws:events:{region}:{account}:rule/{bus}/{rule}")
    }
}

pub fn connection(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:events:{region}:{account}:connection/{name}")
}

pub fn api_destination(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:events:{region}:{account}:api-destination/{name}")
}

/// The name in a resource ARN of this router (`…:{kind}/{name}`, or AWS's
/// `…:{kind}/{name}/{id}`), if it is one.
fn resource_name(arn: &str, kind: &str, region: &str, account: &str) -> Option<String> {
    let rest = arn.strip_prefix(&format!("arn:aws:events:{region}:{account}:{kind}/"))?;
    let name = rest.split('/').next()?;
    crate::connections::check_name(name).ok()?;
    Some(name.to_owned())
}

pub fn connection_name(arn: &str, region: &str, account: &str) -> Option<String> {
    resource_name(arn, "connection", region, account)
}

pub fn api_destination_name(arn: &str, region: &str, account: &str) -> Option<String> {
    resource_name(arn, "api-destination", region, account)
}

pub fn archive(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:events:{region}:{account}:archive/{name}")
}

pub fn replay(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:events:{region}:{account}:replay/{name}")
}

pub fn archive_name(arn: &str, region: &str, account: &str) -> Option<String> {
    let name = arn.strip_prefix(&format!("arn:aws:events:{region}:{account}:archive/"))?;
    crate::domain::ArchiveName::parse(name).ok()?;
    Some(name.to_owned())
}

/// The rule a rule ARN of `bus` names.
pub fn rule_name(arn: &str, region: &str, account: &str, bus: &str) -> Option<String> {
    let prefix = format!("arn:aws:events:{region}:{account}:rule/");
    let rest = arn.strip_prefix(&prefix)?;
    let name = if bus == DEFAULT_BUS {
        rest
    } else {
        rest.strip_prefix(bus)?.strip_prefix('/')?
    };
    crate::domain::RuleName::parse(name).ok()?;
    Some(name.to_owned())
}

/// The bus an `EventBusName` member names: a name, or a bus ARN of this account and region;
/// absent, the default bus.
pub fn bus_name(
    given: Option<&str>,
    field: &str,
    region: &str,
    account: &str,
) -> Result<String, AwsError> {
    let Some(given) = given else {
        return Ok(DEFAULT_BUS.to_owned());
    };
    let name = match given.strip_prefix("arn:") {
        None => given,
        Some(_) => {
            let prefix = format!("arn:aws:events:{region}:{account}:event-bus/");
            given.strip_prefix(&prefix).ok_or_else(|| {
                AwsError::validation(
                    field,
                    format!(
                        "an event bus ARN here is {prefix}<name> (this router's region and account); got {given:?}"
                    ),
                )
            })?
        }
    };
    crate::domain::BusName::parse(name)
        .map(|n| n.as_str().to_owned())
        .map_err(|e| AwsError::validation(field, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_names_come_as_names_or_arns_of_this_region_and_account() {
        assert_eq!(bus_name(None, "f", "r", "1").unwrap(), "default");
        assert_eq!(bus_name(Some("orders"), "f", "r", "1").unwrap(), "orders");
        assert_eq!(
            bus_name(Some(&bus("r", "1", "orders")), "f", "r", "1").unwrap(),
            "orders"
        );
        assert!(bus_name(Some(&bus("other", "1", "orders")), "f", "r", "1").is_err());
        assert!(bus_name(Some("a b"), "f", "r", "1").is_err());
        assert_eq!(rule("r", "1", "default", "x"), "arn:aws:events:r:1:rule/x");
        assert_eq!(rule("r", "1", "b", "x"), "arn:aws:events:r:1:rule/b/x");
        let destination = api_destination("r", "1", "orders");
        assert_eq!(
            api_destination_name(&destination, "r", "1").as_deref(),
            Some("orders")
        );
        assert_eq!(
            api_destination_name(&format!("{destination}/8f3c-1"), "r", "1").as_deref(),
            Some("orders")
        );
        assert_eq!(api_destination_name(&destination, "other", "1"), None);
        assert_eq!(
            api_destination_name("arn:aws:sqs:r:1:queue", "r", "1"),
            None
        );
        assert_eq!(
            connection_name(&connection("r", "1", "c"), "r", "1").as_deref(),
            Some("c")
        );
    }
}
