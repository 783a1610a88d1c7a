"""Constants and helpers shared by the tests (imported as `helpers`)."""

from __future__ import annotations

import os
from pathlib import Path

import integrations

BINDING_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = BINDING_DIR.parent.parent

#: The definition keys API.md promises in the built-in catalog.
CATALOG_KEYS = {
    "hubspot-crm", "salesforce-crm", "pipedrive-crm",
    "visma-erp", "sap-erp", "dynamics-erp",
    "xledger-accounting", "tripletex-accounting", "poweroffice-accounting",
    "shopify-ecommerce", "woocommerce-ecommerce", "magento-ecommerce",
    "gmail-email", "outlook-email", "sendgrid-email",
}  # fmt: skip

#: The seed's HubSpot example, verbatim (API.md, "Tenant integrations").
HUBSPOT_EXAMPLE = {
    "integration_definition_id": "hubspot-crm",
    "name": "HubSpot Production",
    "credentials": {"api_key": "..."},
    "config": {"sync_interval": 3600, "entities": ["contacts", "companies", "deals"], "auto_sync": True},
}

#: The seed's Visma example, verbatim.
VISMA_EXAMPLE = {
    "integration_definition_id": "visma-erp",
    "credentials": {"client_id": "...", "client_secret": "..."},
    "config": {"sync_interval": 3600},
}


def subprocess_env() -> dict:
    """The environment for a child Python that imports this source tree."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(BINDING_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["INTEG_LIBRARY"] = integrations.library_path
    return env
