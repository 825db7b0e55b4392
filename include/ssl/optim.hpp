#pragma once
// Umbrella for ssl/optim/ (filled in as components land).
