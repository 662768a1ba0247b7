// Package labs holds the labs that ship with umlutils, each a lab
// directory umlab runs as it is (labs/ospf, labs/ha-cluster). The package
// has no code: its e2e tests boot the labs on real UML guests.
package labs
