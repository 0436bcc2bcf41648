"""The perk-ray Ray Serve application: ``serve run serving.app:perk`` (configured by ``PERK_*`` variables).

``perk`` is built at import from the environment (see serving.settings); ``build_app(cfg)`` builds one from a
PerkConfig. The deployments live in serving.ingress and serving.deployments, so replicas never import this module.
"""

from ray.serve import Application

from perk_ray.config import PerkConfig
from perk_ray.errors import ConfigError
from serving.auth import ApiKeys
from serving.deployments import AUTOSCALING_DELAYS, AdapterStore, Answerer, Encoder
from serving.ingress import PerkAPI
from serving.settings import load_serving_config


def build_app(cfg: PerkConfig) -> Application:
    """The application graph for ``cfg``: ingress, store, autoscaled encoders and multiplexed answerers."""
    s = cfg.serve
    if s.encoder_min_replicas > s.encoder_max_replicas:
        raise ConfigError(f"serve.encoder_min_replicas={s.encoder_min_replicas} must be <= "
                          f"serve.encoder_max_replicas={s.encoder_max_replicas}")
    if s.api_keys_file:
        ApiKeys.from_file(s.api_keys_file)  # a bad file fails here, not in a replica's restart loop
    autoscaling = {"min_replicas": s.encoder_min_replicas, "max_replicas": s.encoder_max_replicas,
                   "target_ongoing_requests": s.target_ongoing_requests, **AUTOSCALING_DELAYS}
    store = AdapterStore.bind(cfg)
    encoder = Encoder.options(autoscaling_config=autoscaling).bind(cfg)
    answerer = Answerer.options(num_replicas=s.answerer_replicas).bind(cfg, store)
    return PerkAPI.bind(cfg, encoder, answerer, store)


perk = build_app(load_serving_config())
