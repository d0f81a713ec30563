"""Packaged configuration: the demo home. (Rule defaults live with each rule, in
`detect/rules/`; `telecare rules` prints them.)"""
