#![allow(clippy::expect_used, clippy::unwrap_used)]
//! kubectl and custom resources: `kubectl apply -f` of a CustomResourceDefinition and
//! then of a custom resource, `kubectl get <plural>` (and its short name) printing the
//! definition's printer columns with their values from the server's Table (also in
//! `kubectl get --watch`), a second apply patching the object, schema errors, and the
//! definition's deletion.

mod common;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use common::kubectl::served;

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: gadgets
    singular: gadget
    kind: Gadget
    shortNames: [gd]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - name: Size
      type: integer
      jsonPath: .spec.size
    - name: Colour
      type: string
      jsonPath: .spec.colour
    - name: Ready
      type: string
      jsonPath: .status.conditions[?(@.type=="Ready")].status
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer}
              colour: {type: string}
          status:
            type: object
            properties:
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
"#;

fn gadget(name: &str, size: u32, colour: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: {name}\nspec:\n  size: {size}\n  colour: {colour}\n"
    )
}

/// The cells of a `kubectl get` table: header first, split on runs of spaces.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_a_definition_and_its_objects_and_prints_their_columns() {
    let (cluster, _served, k) = served().await;
    let crd = k.file("crd.yaml", CRD);
    assert_eq!(
        k.ok(&["apply", "-f", &crd]).await.trim(),
        "customresourcedefinition.apiextensions.k8s.io/gadgets.example.com created"
    );
    // Discovery shows the new resource.
    let resources = rows(&k.ok(&["api-resources", "--api-group=example.com"]).await);
    assert_eq!(
        resources[1],
        ["gadgets", "gd", "example.com/v1", "true", "Gadget"],
        "{resources:?}"
    );
    let g1 = k.file("g1.yaml", &gadget("g1", 3, "red"));
    assert_eq!(
        k.ok(&["apply", "-f", &g1]).await.trim(),
        "gadget.example.com/g1 created"
    );
    let g2 = k.file("g2.yaml", &gadget("g2", 12, "blue"));
    k.ok(&["apply", "-f", &g2]).await;

    // Status written by "the operator", shown in the Ready column.
    let ready = k.file(
        "status.json",
        r#"{"status": {"conditions": [{"type": "Ready", "status": "True"}]}}"#,
    );
    let patch = std::fs::read_to_string(&ready).unwrap();
    k.ok(&[
        "patch",
        "gadget",
        "g1",
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ])
    .await;

    let table = rows(&k.ok(&["get", "gadgets"]).await);
    assert_eq!(
        table[0],
        ["NAME", "SIZE", "COLOUR", "READY", "AGE"],
        "{table:?}"
    );
    assert_eq!(table[1][..4], ["g1", "3", "red", "True"], "{table:?}");
    // No Ready condition: a null cell, which kubectl prints empty.
    assert_eq!(table[2].len(), 4, "{table:?}");
    assert_eq!(table[2][..3], ["g2", "12", "blue"], "{table:?}");
    assert!(table[1][4].ends_with('s'), "an age: {table:?}");
    // The server printed it: kubectl asked for a Table.
    assert!(cluster.journal().entries().iter().any(|e| {
        e.verb == "list"
            && e.path
                .starts_with("/apis/example.com/v1/namespaces/default/gadgets")
    }));

    // Short name, one object, and the objects themselves.
    let one = rows(&k.ok(&["get", "gd", "g2"]).await);
    assert_eq!(one.len(), 2, "{one:?}");
    assert_eq!(one[1][..3], ["g2", "12", "blue"]);
    let list: Value = serde_json::from_str(&k.ok(&["get", "gadgets", "-o", "json"]).await).unwrap();
    assert_eq!(list["items"][0]["spec"]["size"], 3);
    assert_eq!(list["items"][0]["apiVersion"], "example.com/v1");

    // A second apply of a changed manifest patches the object.
    let g1_bigger = k.file("g1.yaml", &gadget("g1", 4, "red"));
    assert_eq!(
        k.ok(&["apply", "-f", &g1_bigger]).await.trim(),
        "gadget.example.com/g1 configured"
    );
    let table = rows(&k.ok(&["get", "gadgets"]).await);
    assert_eq!(table[1][..4], ["g1", "4", "red", "True"], "{table:?}");

    // kubectl get --watch prints the columns of objects as they change.
    let mut child = k
        .command(&["get", "gadgets", "--watch", "--output-watch-events"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut changed = false;
    let watched = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push(line.clone());
            if line.contains("g2") && !changed {
                changed = true;
                cluster
                    .journal()
                    .wait_for(|e| e.verb == "watch" && e.user_agent.starts_with("kubectl"))
                    .await;
                let g2 = k.file("g2.yaml", &gadget("g2", 13, "blue"));
                k.ok(&["apply", "-f", &g2]).await;
            }
            if line.starts_with("MODIFIED") && line.contains("g2") {
                return true;
            }
        }
        false
    })
    .await;
    child.kill().await.unwrap();
    assert_eq!(watched, Ok(true), "kubectl get --watch printed: {seen:?}");
    let modified = rows(seen.last().unwrap());
    assert_eq!(
        modified[0][..4],
        ["MODIFIED", "g2", "13", "blue"],
        "{seen:?}"
    );

    // kubectl explain reads the definition's schema from the served OpenAPI.
    let explained = k.ok(&["explain", "gadgets.spec"]).await;
    assert!(
        explained
            .lines()
            .any(|l| l.split_whitespace().eq(["KIND:", "Gadget"])),
        "{explained}"
    );
    for field in ["size\t<integer> -required-", "colour\t<string>"] {
        assert!(explained.contains(field), "{field:?} in {explained}");
    }

    // The schema is enforced for kubectl too.
    let bad = k.file(
        "bad.yaml",
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: bad\nspec:\n  colour: red\n",
    );
    let (ok, _, stderr) = k.run(&["apply", "-f", &bad]).await;
    assert!(!ok);
    assert!(stderr.contains("spec.size: Required value"), "{stderr}");

    // Deleting the definition takes its objects.
    // (kubectl waits for the deletion, which the definition's cleanup finalizer holds.)
    k.ok(&["delete", "-f", &crd]).await;
    let store = cluster.store();
    assert!(
        store
            .resources()
            .find("example.com", "v1", "gadgets")
            .is_none()
    );
    assert!(
        store
            .get(
                cmdreporter_fake_cluster::resources::well_known::crds(),
                "",
                "gadgets.example.com"
            )
            .is_err()
    );
    let (ok, _, stderr) = k.run(&["get", "gadgets"]).await;
    assert!(!ok, "no such resource any more");
    // kubectl may still hold the resource in its discovery cache: then the server's 404.
    assert!(
        stderr.contains("the server doesn't have a resource type \"gadgets\"")
            || stderr.contains("the server could not find the requested resource"),
        "{stderr}"
    );
}
