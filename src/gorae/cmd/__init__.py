"""The composition root: the entry points (`gorae`, `gorae daemon`) and the only package allowed to import
everything. It builds the services, hands each the collaborators it needs, and starts the listeners; no other
package reaches across the layers (tests/unit/test_layering.py holds the contract)."""
