#pragma once
// Umbrella for ssl/eval/ (filled in as components land).
