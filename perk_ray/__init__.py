"""perk-ray: PERK (long-context reasoning as parameter-efficient test-time learning) on Ray.

Importing ``perk_ray`` sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already sets it: OpenMP threads then
sleep instead of spinning between torch's small kernels, which made encoding 21-24x faster on a shared 2-core machine
(README, Performance). It takes effect only when ``perk_ray`` is imported before torch; Ray workers get it through
``perk_ray.runtime.init_ray``.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
