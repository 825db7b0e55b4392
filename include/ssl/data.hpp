#pragma once
// Umbrella for ssl/data/ (filled in as components land).
